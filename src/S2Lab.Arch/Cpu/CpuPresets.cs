namespace S2Lab.Arch.Cpu;

/// <summary>A named CPU preset and what is known about where its values come from.</summary>
public sealed record CpuPreset(string Name, CpuModel Model, PresetConfidence FeatureConfidence, string Source);

/// <summary>
/// Presets for real cores. Register values are built from the fields S2Lab reads; other fields are zero.
/// CTR_EL0 always carries RES1 bit 31 and 64-byte lines (IminLine = DminLine = 4).
/// </summary>
public static class CpuPresets
{
    private const ulong CtrBase = (1UL << 31) | (4UL << 16) | 4UL;
    private const ulong Idc = 1UL << CtrEl0.IdcBit;
    private const ulong Dic = 1UL << CtrEl0.DicBit;
    private const ulong Fwb = 1UL << IdAa64Mmfr2El1.FwbShift;

    private static CpuPreset Make(string name, int paBits, bool fwb, ulong ctrBits, PresetConfidence confidence, string source,
        bool mte2 = false) =>
        new(name,
            CpuModel.FromRegisters(name, (ulong)IdAa64Mmfr0El1.EncodePaBits(paBits)!.Value, fwb ? Fwb : 0, CtrBase | ctrBits, source,
                mte2 ? 2UL << IdAa64Pfr1El1.MteShift : 0),
            confidence, source);

    /// <summary>Every preset, in a stable order.</summary>
    public static IReadOnlyList<CpuPreset> All { get; } =
    [
        Make("neoverse-n1", 48, fwb: false, Idc | Dic, PresetConfidence.Confirmed,
            "Armv8.2 (Ampere Altra, Graviton2). FWB absent: ID_AA64MMFR2_EL1[63:16] RES0 in the A76/N1 TRM. " +
            "IDC and DIC both set (FreeBSD notes on N1/Graviton2). PA size 48 bits assumed."),
        Make("neoverse-v1", 48, fwb: true, Idc | Dic, PresetConfidence.Assumed,
            "Armv8.4 (Graviton3). FWB expected from Armv8.4 (the TRM's v8.4 exceptions do not include it); " +
            "DIC not verified, assumed set as on N1 and V2. PA size 48 bits assumed."),
        Make("neoverse-v2", 48, fwb: true, Idc | Dic, PresetConfidence.Confirmed,
            "Armv9.0 (NVIDIA Grace). FWB architectural from Armv8.4; DIC implied: the cacheable-PFNMAP series " +
            "requires FWB && DIC and was tested on GH200/GB200. PA size 48 bits assumed."),
        Make("cortex-a72", 44, fwb: false, 0, PresetConfidence.Assumed,
            "Armv8.0: no FWB (an Armv8.4 feature). IDC and DIC assumed clear, as on other Armv8.0 cores. PA size 44 bits."),
        Make("max", 52, fwb: true, Idc | Dic, PresetConfidence.Assumed,
            "Every feature S2Lab models: FWB, IDC, DIC, MTE2, 52-bit PA (KVM still offers at most 48-bit IPA with 4K pages).",
            mte2: true),
    ];

    /// <summary>The preset with this name (case-insensitive), or null.</summary>
    public static CpuPreset? Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The preset with this name; throws <see cref="ArgumentException"/> naming the known presets otherwise.</summary>
    public static CpuPreset Get(string name) =>
        Find(name) ?? throw new ArgumentException(
            $"unknown CPU preset '{name}'; known presets: {string.Join(", ", All.Select(p => p.Name))}", nameof(name));
}
