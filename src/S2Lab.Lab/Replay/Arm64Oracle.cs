using System.Globalization;
using System.Text.Json;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Mm;

namespace S2Lab.Lab.Replay;

/// <summary>
/// The header of a transcript recorded by the arm64 KVM oracle (oracle/arm64/oracle.sh): a <c>#@ {json}</c> comment
/// line naming the kernel, QEMU, the -cpu model, the generator seed, and what the probe read inside the guest
/// (CTR_EL0, whether the kernel detected stage-2 FWB, VHE, the IPA limit).
/// </summary>
public sealed record OracleHeader(
    string Kernel, string Qemu, string Cpu, int Seed, ulong CtrEl0, bool Fwb, bool Vhe, int IpaLimit, string Design, bool Mte = false)
{
    public const string Format = "s2lab-oracle/1";
    public const string Prefix = "#@ ";

    /// <summary>
    /// The model CPU the probed registers describe: PARange from the IPA limit, FWB from the boot log, CTR_EL0 as read,
    /// MTE2 when KVM_CAP_ARM_MTE was 1.
    /// </summary>
    public CpuModel CpuModel()
    {
        var pa = IdAa64Mmfr0El1.EncodePaBits(IpaLimit)
                 ?? throw new ArgumentException($"IPA limit {IpaLimit} is not a PARange size");
        return Arch.Cpu.CpuModel.FromRegisters($"qemu-{Cpu}", (ulong)pa, Fwb ? 1UL << IdAa64Mmfr2El1.FwbShift : 0, CtrEl0,
            $"probed under QEMU {Qemu}, Linux {Kernel}", Mte ? 2UL << IdAa64Pfr1El1.MteShift : 0);
    }

    /// <summary>The design that models <paramref name="kernelRelease"/> ("7.3.4+deb13-arm64" is linux-6.17).</summary>
    public static string DesignFor(string kernelRelease)
    {
        var parts = kernelRelease.Split('.', '-', '+');
        if (parts.Length < 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var major) ||
            !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var minor))
            throw new ArgumentException($"'{kernelRelease}' is not a kernel release");
        var v = new KernelVersion(major, minor);
        return v >= new KernelVersion(6, 17) ? "linux-6.17" : v >= new KernelVersion(6, 9) ? "linux-6.9" : "linux-6.8";
    }

    /// <summary>Reads the header of a transcript; null with an error naming the file and field.</summary>
    public static OracleHeader? TryRead(string path, out string? error)
    {
        string? line;
        try
        {
            line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: cannot read the file: {e.Message}";
            return null;
        }
        if (line is null)
        {
            error = $"{path}: no '{Prefix.Trim()}' header line (not an oracle transcript)";
            return null;
        }
        return TryParse(line[Prefix.Length..], path, out error);
    }

    /// <summary>Parses the header's JSON object.</summary>
    public static OracleHeader? TryParse(string json, string name, out string? error)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            string Str(string f) => r.TryGetProperty(f, out var e) && e.ValueKind == JsonValueKind.String
                ? e.GetString()!
                : throw new FormatException($"field '{f}': missing or not a string");
            if (Str("format") != Format)
                throw new FormatException($"field 'format': must be \"{Format}\"");
            var ctrText = Str("ctr_el0");
            if (!ctrText.StartsWith("0x", StringComparison.Ordinal) ||
                !ulong.TryParse(ctrText.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var ctr))
                throw new FormatException("field 'ctr_el0': must be a 0x hex number");
            bool Bool(string f) => r.TryGetProperty(f, out var e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? e.GetBoolean()
                : throw new FormatException($"field '{f}': missing or not true/false");
            int Int(string f) => r.TryGetProperty(f, out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v)
                ? v
                : throw new FormatException($"field '{f}': missing or not an integer");
            var kernel = Str("kernel");
            var mte = r.TryGetProperty("mte", out _) && Bool("mte"); // optional: false when absent
            var header = new OracleHeader(kernel, Str("qemu"), Str("cpu"), Int("seed"), ctr, Bool("fwb"), Bool("vhe"), Int("ipa_limit"),
                Str("design"), mte);
            if (header.Design != DesignFor(kernel))
                throw new FormatException($"field 'design': {header.Design} does not model Linux {kernel} ({DesignFor(kernel)} does)");
            if (IdAa64Mmfr0El1.EncodePaBits(header.IpaLimit) is null)
                throw new FormatException($"field 'ipa_limit': {header.IpaLimit} is not a PARange size");
            error = null;
            return header;
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
        {
            error = $"{name}: oracle header: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// The model of the recorded machine: this CPU, the design for the kernel, QEMU virt's 1 GiB of RAM of which the
    /// kernel owns 768 MiB (the rest is the carved RAM), one CPU; and the seams a replay on it runs through.
    /// </summary>
    public (ModelKvmSystem Kvm, ReplayHost Machine) CreateModel()
    {
        var memory = new PhysicalMemory(ramBase: 0x4000_0000, ramSize: ModelReplayMappings.CarvedBase - 0x4000_0000);
        var host = new Host("oracle", CpuModel(), KvmDesigns.Create(Design), memory, cpuCount: 1);
        var kvm = new ModelKvmSystem(host, KvmProfile.Arm64);
        return (kvm, ModelReplayMappings.Host(kvm));
    }

    /// <summary>The header as its JSON object (what the oracle script writes after <see cref="Prefix"/>).</summary>
    public string ToJson() => string.Create(CultureInfo.InvariantCulture,
        $$"""{"format":"{{Format}}","kernel":"{{Kernel}}","qemu":"{{Qemu}}","cpu":"{{Cpu}}","seed":{{Seed}},"ctr_el0":"0x{{CtrEl0:x}}","fwb":{{(Fwb ? "true" : "false")}},"vhe":{{(Vhe ? "true" : "false")}},"ipa_limit":{{IpaLimit}},"mte":{{(Mte ? "true" : "false")}},"design":"{{Design}}"}""");
}

/// <summary>Replays an oracle transcript on the model of the machine it was recorded on.</summary>
public static class OracleTranscript
{
    /// <summary>Each line whose model result differs from the recorded answer, as "line N: op -> model ..., kernel ...".</summary>
    public static IReadOnlyList<string> Differences(OracleHeader header, ReplayFile file)
    {
        var (kvm, machine) = header.CreateModel();
        using (kvm)
        {
            return ReplayRunner.Run(kvm, file.Ops, machine)
                .Where(s => !s.MatchesExpectation)
                .Select(s => $"line {s.Op.Line}: {ReplayWriter.Format(s.Op, null)} -> model {Show(s.Result, s.Value, s.Exit, s.Leaf)}, " +
                             $"kernel {Show(s.Op.Expected ?? Kernel.Kvm.Uapi.Errno.None, s.Op.ExpectedValue, s.Op.ExpectedExit, s.Op.ExpectedLeaf)}")
                .ToList();
        }
    }

    private static string Show(Kernel.Kvm.Uapi.Errno e, long? value, string? exit, string? leaf) =>
        ErrnoText.Format(e) + (value is { } v ? $" value {v}" : "") + (exit is null ? "" : $" exit {exit}") + (leaf is null ? "" : $" leaf {leaf}");
}
