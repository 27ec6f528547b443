using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>KVM's names for the CMOs a stage-2 change asks for (<see cref="CacheOp"/>, reported by the table).</summary>
public static class CmoKindNames
{
    /// <summary>"DcacheCleanInvalPoc" (dcache_clean_inval_poc, skipped with FWB) or "IcacheInvalPou" (icache_inval_pou, a no-op with DIC).</summary>
    public static string KvmName(this CacheOp kind) =>
        kind == CacheOp.IcIvau ? "IcacheInvalPou" : "DcacheCleanInvalPoc";
}

/// <summary>One CMO and whether the host could perform it (by kernel VA: only pages in the linear map have one).</summary>
/// <param name="Needed">The operation is required (no FWB for the D-cache, no DIC for the I-cache).</param>
/// <param name="Possible">The host has a kernel VA for the range (pfn_is_map_memory).</param>
public readonly record struct CacheMaintenance(CacheOp Kind, ulong Pa, ulong Size, bool Needed, bool Possible, string Reason)
{
    /// <summary>Needed but impossible: the cacheable mapping is unsafe.</summary>
    public bool IsImpossible => Needed && !Possible;

    public override string ToString() =>
        $"{Kind.KvmName()} PA {Pa:x}+{Size:x}: {(Needed ? Possible ? "needed, done" : "NEEDED BUT IMPOSSIBLE" : "not needed")} ({Reason})";
}
