using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>A stage-2 leaf: [Ipa, Ipa + Size) maps to Pa with a prot and the MemAttr written in the descriptor.</summary>
/// <param name="Fwb">The table uses the MT_S2_FWB_* encodings (stage2_has_fwb), which <paramref name="MemAttr"/> is in.</param>
/// <param name="Level">Translation level of the leaf (3 = page, 2 = 2 MiB block, 1 = 1 GiB block with 4K granule).</param>
/// <param name="Descriptor">The raw descriptor value.</param>
/// <remarks>Fwb sits beside MemAttr so the struct stays 48 bytes (it is held, nullable, in every fault record).</remarks>
public readonly record struct Stage2Leaf(ulong Ipa, ulong Size, ulong Pa, KvmPgtableProt Prot, byte MemAttr, bool Fwb, int Level, ulong Descriptor)
{
    public bool Readable => (Prot & KvmPgtableProt.R) != 0;

    public bool Writable => (Prot & KvmPgtableProt.W) != 0;

    public bool Executable => (Prot & KvmPgtableProt.X) != 0;

    /// <summary>
    /// The KVM memory type of the leaf, decoded from its MemAttr (<see cref="KvmS2MemAttr.TypeOf"/>). KVM writes only
    /// PAGE_S2_MEMATTR values; any other value reads as Normal, as a leaf without the DEVICE or NORMAL_NC prot bit does.
    /// </summary>
    public KvmS2MemType MemType => KvmS2MemAttr.TypeOf(MemAttr, Fwb) ?? KvmS2MemType.Normal;

    public bool Contains(ulong ipa) => ipa - Ipa < Size;

    /// <summary>The physical address behind <paramref name="ipa"/>.</summary>
    public ulong Translate(ulong ipa) => Pa + (ipa - Ipa);

    public override string ToString() =>
        $"IPA [{Ipa:x}-{Ipa + Size:x}) -> PA {Pa:x} L{Level} {Prot} MemAttr=0x{MemAttr:X}";
}

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
