using S2Lab.Arch.Caches;

namespace S2Lab.Arch.Translation;

/// <summary>
/// The result of a table operation: 0 or a Linux errno, with the kernel's numbers (so the kernel layer can cast it to its
/// Errno) and the meaning <c>arch/arm64/kvm/hyp/pgtable.c</c> gives them.
/// </summary>
public enum Stage2Errno
{
    /// <summary>Success.</summary>
    None = 0,

    /// <summary>-E2BIG: internal to the map walk (a leaf is not allowed here); never returned.</summary>
    E2BIG = 7,

    /// <summary>-EAGAIN: the entry already holds what was asked (map) or is not valid (permission update); with a fault-handler walk this stops the walk and is returned.</summary>
    EAGAIN = 11,

    /// <summary>-ENOMEM: no page for a new table.</summary>
    ENOMEM = 12,

    /// <summary>-EINVAL: bad arguments (unaligned address, size or output address; output address beyond the OA size).</summary>
    EINVAL = 22,

    /// <summary>-ERANGE: the range is outside the IPA space.</summary>
    ERANGE = 34,
}

/// <summary>
/// One CMO a table change needs (<see cref="CacheOp.DcCivac"/> or <see cref="CacheOp.IcIvau"/>, docs/arm-reference.md#cmo): what, for which guest range and which physical range. The host performs it through the kernel linear map
/// (the VA of the PA), so the caller decides whether it can (it cannot for PFNMAP memory without a kernel VA).
/// Contiguous ranges of the same kind are merged.
/// </summary>
public readonly record struct S2CacheMaintenance(CacheOp Kind, ulong Ipa, ulong Pa, ulong Size)
{
    public override string ToString() =>
        $"{(Kind == CacheOp.IcIvau ? "IC IVAU (inval to PoU)" : "DC CIVAC (clean+inval to PoC)")} " +
        $"IPA 0x{Ipa:x}-0x{Ipa + Size - 1:x} PA 0x{Pa:x}-0x{Pa + Size - 1:x}";
}

/// <summary>What a recorded table event is.</summary>
public enum Stage2EventKind
{
    /// <summary>A valid entry was made invalid before it is replaced (break-before-make), followed by a TLB invalidation.</summary>
    BreakBeforeMake,

    /// <summary>A valid leaf was removed (unmap).</summary>
    LeafRemoved,

    /// <summary>An empty table was unlinked and freed.</summary>
    TableRemoved,

    /// <summary>TLBI by IPA (with the leaf level as TTL hint).</summary>
    TlbiIpa,

    /// <summary>TLBI by IPA range.</summary>
    TlbiRange,

    /// <summary>TLBI of the whole VMID.</summary>
    TlbiVmid,

    /// <summary>A block was replaced by a table of smaller leaves.</summary>
    BlockSplit,

    /// <summary>A table was replaced by a block.</summary>
    TableCollapsed,
}

/// <summary>One recorded event (recording is on with <see cref="Stage2TableOptions.RecordEvents"/>).</summary>
public readonly record struct Stage2Event(Stage2EventKind Kind, ulong Ipa, ulong Size, int Level, ulong OldDescriptor, ulong NewDescriptor);

/// <summary>Running totals of what the table did; always maintained.</summary>
public sealed class Stage2Counters
{
    public long LeavesInstalled { get; internal set; }

    public long LeavesRemoved { get; internal set; }

    public long PermissionUpdates { get; internal set; }

    public long BreakBeforeMake { get; internal set; }

    public long TlbiByIpa { get; internal set; }

    public long TlbiByRange { get; internal set; }

    public long TlbiByVmid { get; internal set; }

    public long TablesAllocated { get; internal set; }

    public long TablesFreed { get; internal set; }

    public long BlocksSplit { get; internal set; }

    public long TablesCollapsed { get; internal set; }

    /// <summary>D-cache clean+invalidate to PoC operations reported (one per leaf, before merging).</summary>
    public long DcacheCleanInvalidatePoc { get; internal set; }

    /// <summary>I-cache invalidate to PoU operations reported (one per leaf, before merging).</summary>
    public long IcacheInvalidatePou { get; internal set; }

    /// <summary>Map requests answered with -EAGAIN because the entry already held the mapping (permissions aside).</summary>
    public long MapNoChange { get; internal set; }

    public override string ToString() =>
        $"installed {LeavesInstalled}, removed {LeavesRemoved}, perm updates {PermissionUpdates}, BBM {BreakBeforeMake}, " +
        $"TLBI ipa/range/vmid {TlbiByIpa}/{TlbiByRange}/{TlbiByVmid}, tables +{TablesAllocated}/-{TablesFreed}, " +
        $"split {BlocksSplit}, collapsed {TablesCollapsed}, CMO dc/ic {DcacheCleanInvalidatePoc}/{IcacheInvalidatePou}";
}

/// <summary>Construction options of a <see cref="Stage2PageTable"/>.</summary>
public sealed record Stage2TableOptions
{
    /// <summary>HCR_EL2.FWB (FEAT_S2FWB in use): selects the NORMAL MemAttr (6 instead of 0xF) and drops D-cache CMOs.</summary>
    public bool Fwb { get; init; }

    /// <summary>CTR_EL0.DIC: no I-cache invalidation is needed for executable leaves.</summary>
    public bool Dic { get; init; }

    /// <summary>VMID of the VM (tags TLB entries).</summary>
    public ushort Vmid { get; init; } = 1;

    /// <summary>FEAT_XNX: XN[0] (bit 53) distinguishes EL0 and EL1 execution. Without it only XN[1] counts.</summary>
    public bool Xnx { get; init; }

    /// <summary>
    /// FEAT_TLBIRANGE: unmap defers its TLB invalidation to one range invalidation at the end of the walk
    /// (stage2_unmap_defer_tlb_flush) instead of one TLBI by IPA per leaf.
    /// </summary>
    public bool TlbiRange { get; init; }

    /// <summary>Keep a list of <see cref="Stage2Event"/> (BBM, TLBI, table changes). Counters are kept regardless.</summary>
    public bool RecordEvents { get; init; }

    /// <summary>At most this many events are kept; later ones are counted in <see cref="Stage2PageTable.EventsDropped"/>.</summary>
    public int MaxEvents { get; init; } = 100_000;

    /// <summary>Where table pages come from; a new <see cref="SimulatedTableMemory"/> when null.</summary>
    public IStage2TableMemory? Memory { get; init; }

    /// <summary>The TLB (shared between VMs of a host); a new one when null.</summary>
    public Stage2Tlb? Tlb { get; init; }
}

/// <summary>
/// A stage-2 leaf, or the entry where a lookup stopped (<see cref="IsValid"/> is false when nothing is mapped):
/// [<see cref="Ipa"/>, Ipa + <see cref="Size"/>) maps to <see cref="Pa"/> through <see cref="Descriptor"/> at
/// <see cref="Level"/>. It carries the table's granule, output-address format and HCR_EL2.FWB, which are what it takes
/// to read the descriptor (its size, its output address, the meaning of its MemAttr). 24 bytes.
/// </summary>
public readonly record struct S2Leaf
{
    private readonly int _level;
    private readonly byte _granule;
    private readonly byte _format;
    private readonly bool _fwb;

    /// <param name="ipa">The first IPA the entry covers (aligned down to its level's size).</param>
    /// <param name="descriptor">The descriptor.</param>
    /// <param name="level">Its translation level (3 = page with a 4K granule).</param>
    /// <param name="granule">The table's granule.</param>
    /// <param name="format">Where the descriptor keeps output-address bits above 47.</param>
    /// <param name="fwb">HCR_EL2.FWB for the table: selects how <see cref="S2Descriptor.MemAttr"/> is read.</param>
    public S2Leaf(ulong ipa, S2Descriptor descriptor, int level, Granule granule = Granule.Size4K,
        S2AddressFormat format = S2AddressFormat.Pa48, bool fwb = false)
    {
        Ipa = ipa;
        Descriptor = descriptor;
        _level = level;
        _granule = (byte)granule;
        _format = (byte)format;
        _fwb = fwb;
    }

    /// <summary>The first IPA the entry covers.</summary>
    public ulong Ipa { get; }

    /// <summary>The descriptor.</summary>
    public S2Descriptor Descriptor { get; }

    /// <summary>Translation level of the entry.</summary>
    public int Level => _level;

    /// <summary>The table's granule.</summary>
    public Granule Granule => (Granule)_granule;

    /// <summary>The table's output-address format.</summary>
    public S2AddressFormat Format => (S2AddressFormat)_format;

    /// <summary>HCR_EL2.FWB for the table (the MemAttr is an MT_S2_FWB_* style value when set).</summary>
    public bool Fwb => _fwb;

    /// <summary>A valid block or page.</summary>
    public bool IsValid => Descriptor.IsLeaf(_level);

    /// <summary>Bytes the entry covers (its level's block or page size).</summary>
    public ulong Size => Granule.LevelSize(_level);

    /// <summary>The output address of a valid leaf.</summary>
    public ulong Pa => Descriptor.LeafOutputAddress(Granule, _level, Format);

    /// <summary>Whether <paramref name="ipa"/> lies inside the entry.</summary>
    public bool Contains(ulong ipa) => ipa - Ipa < Size;

    /// <summary>The physical address behind <paramref name="ipa"/> (inside the leaf).</summary>
    public ulong Translate(ulong ipa) => Pa + (ipa - Ipa);

    public override string ToString() =>
        IsValid
            ? $"IPA [{Ipa:x}-{Ipa + Size:x}) -> PA {Pa:x} L{_level} {Descriptor.Permissions} MemAttr=0x{Descriptor.MemAttr:X}"
            : $"IPA {Ipa:x}: no leaf (L{_level})";
}

/// <summary>One step of a table walk, for explanations.</summary>
/// <param name="Level">Level of the table read.</param>
/// <param name="Index">Index of the descriptor in that table (wider at a concatenated start level).</param>
/// <param name="TablePa">Physical address of the table.</param>
/// <param name="DescriptorPa">Physical address of the descriptor (TablePa + 8 × Index).</param>
/// <param name="Descriptor">The descriptor read.</param>
public readonly record struct S2WalkStep(int Level, int Index, ulong TablePa, ulong DescriptorPa, S2Descriptor Descriptor);
