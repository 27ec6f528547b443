using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>A cache maintenance operation KVM performs when it installs a stage-2 leaf.</summary>
public enum CmoKind
{
    /// <summary>dcache_clean_inval_poc on a new cacheable leaf (skipped with FWB).</summary>
    DcacheCleanInvalPoc,

    /// <summary>icache_inval_pou on a new executable leaf (a no-op with DIC).</summary>
    IcacheInvalPou,
}

/// <summary>One CMO and whether the host could perform it (by kernel VA: only pages in the linear map have one).</summary>
/// <param name="Needed">The operation is required (no FWB for the D-cache, no DIC for the I-cache).</param>
/// <param name="Possible">The host has a kernel VA for the range (pfn_is_map_memory).</param>
public readonly record struct CacheMaintenance(CmoKind Kind, ulong Pa, ulong Size, bool Needed, bool Possible, string Reason)
{
    /// <summary>Needed but impossible: the cacheable mapping is unsafe.</summary>
    public bool IsImpossible => Needed && !Possible;

    public override string ToString() =>
        $"{Kind} PA {Pa:x}+{Size:x}: {(Needed ? Possible ? "needed, done" : "NEEDED BUT IMPOSSIBLE" : "not needed")} ({Reason})";
}
