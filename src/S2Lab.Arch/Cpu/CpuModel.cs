namespace S2Lab.Arch.Cpu;

/// <summary>How sure S2Lab is of a preset's register values.</summary>
public enum PresetConfidence
{
    /// <summary>Taken from a TRM or from Linux/FreeBSD behaviour reported in the sources.</summary>
    Confirmed,

    /// <summary>Derived from the architecture version the core implements, not read off a manual.</summary>
    Assumed,
}

/// <summary>
/// A CPU as KVM sees it: the raw ID register values, and the features Linux derives from them.
/// All features are system-wide in Linux (every CPU must have them), so one model stands for the whole host.
/// </summary>
public sealed record CpuModel(string Name, IdAa64Mmfr0El1 Mmfr0, IdAa64Mmfr2El1 Mmfr2, CtrEl0 Ctr, string Notes = "", IdAa64Pfr1El1 Pfr1 = default)
{
    /// <summary>ARM64_MTE (FEAT_MTE2): system_supports_mte(), what KVM_CAP_ARM_MTE reports and needs.</summary>
    public bool HasMte => Pfr1.HasMte2;

    /// <summary>ARM64_HAS_STAGE2_FWB (FEAT_S2FWB).</summary>
    public bool HasStage2Fwb => Mmfr2.HasStage2Fwb;

    /// <summary>ARM64_HAS_CACHE_DIC (CTR_EL0.DIC).</summary>
    public bool HasCacheDic => Ctr.Dic;

    /// <summary>ARM64_HAS_CACHE_IDC (CTR_EL0.IDC). Not part of the cacheable-PFNMAP condition.</summary>
    public bool HasCacheIdc => Ctr.Idc;

    /// <summary>Physical address size in bits (from PARange); 48 for a reserved PARange, as Linux clamps unknown values.</summary>
    public int PaBits => Mmfr0.PaBits ?? 48;

    /// <summary>
    /// The largest IPA size KVM offers to a VM (kvm_ipa_limit): the PA size, capped at 48 bits with 4K pages
    /// unless 52-bit support (LPA2) is used; S2Lab models 4K pages without LPA2.
    /// </summary>
    public int IpaLimitBits => Math.Min(PaBits, 48);

    /// <summary>Rule 1: FEAT_S2FWB and CTR_EL0.DIC both present. IDC does not matter.</summary>
    public bool SupportsCacheablePfnmap => HasStage2Fwb && HasCacheDic;

    /// <summary>Builds a model from raw register values, as read from a real machine or a scenario file.</summary>
    public static CpuModel FromRegisters(string name, ulong idAa64Mmfr0, ulong idAa64Mmfr2, ulong ctrEl0, string notes = "", ulong idAa64Pfr1 = 0) =>
        new(name, new IdAa64Mmfr0El1(idAa64Mmfr0), new IdAa64Mmfr2El1(idAa64Mmfr2), new CtrEl0(ctrEl0), notes, new IdAa64Pfr1El1(idAa64Pfr1));
}
