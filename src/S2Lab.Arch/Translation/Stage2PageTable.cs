using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using S2Lab.Arch.Caches;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

/// <summary>
/// A VM's stage-2 translation tables in the hardware format: 8-byte descriptors in granule-sized tables (a possibly
/// concatenated start level) held in simulated physical memory, changed the way Linux's <c>arch/arm64/kvm/hyp/pgtable.c</c>
/// changes them: each operation is one range walk with a visitor; a valid entry is replaced by break-before-make
/// (invalid, TLB invalidation, then the new entry), and the cache maintenance a change needs is reported as data.
/// Not thread-safe (the model runs one vCPU fault at a time).
/// </summary>
public sealed partial class Stage2PageTable
{
    private readonly Stage2Geometry _geometry;
    private readonly IStage2TableMemory _memory;
    private readonly Stage2Tlb _tlb;
    private readonly Granule _granule;
    private readonly S2AddressFormat _format;
    private readonly ulong _oaLimit;
    private readonly List<Stage2Event>? _events;
    private readonly int _maxEvents;
    private ulong _rootPa;
    private bool _destroyed;
    private long _tablePages;

    /// <summary>Creates empty tables (only the start level, zeroed) for <paramref name="geometry"/>.</summary>
    /// <exception cref="ArgumentException">The memory or TLB uses a different page size than the granule.</exception>
    /// <exception cref="InvalidOperationException">No memory for the start-level table (kvm_pgtable_stage2_init's -ENOMEM).</exception>
    public Stage2PageTable(Stage2Geometry geometry, Stage2TableOptions? options = null)
    {
        options ??= new Stage2TableOptions();
        _geometry = geometry;
        _granule = geometry.Granule;
        _format = geometry.AddressFormat;
        _oaLimit = geometry.OaBits >= 64 ? ulong.MaxValue : 1UL << geometry.OaBits;
        Options = options;
        _memory = options.Memory ?? new SimulatedTableMemory(_granule);
        _tlb = options.Tlb ?? new Stage2Tlb(_granule);
        if (_memory.PageShift != _granule.Shift())
        {
            throw new ArgumentException($"table memory pages are 2^{_memory.PageShift} bytes, the granule is {_granule.Name()}");
        }

        if (_tlb.Granule != _granule)
        {
            throw new ArgumentException($"the TLB is for the {_tlb.Granule.Name()} granule, the tables use {_granule.Name()}");
        }

        _events = options.RecordEvents ? [] : null;
        _maxEvents = options.MaxEvents;
        int rootPages = geometry.ConcatenatedTables;
        if (!_memory.TryZallocPages(rootPages, out _rootPa))
        {
            throw new InvalidOperationException("no memory for the stage-2 start-level table (-ENOMEM)");
        }

        _tablePages = rootPages;
        Counters.TablesAllocated += rootPages;
    }

    /// <summary>Creates tables for a VTCR_EL2 value, validated against <paramref name="features"/>.</summary>
    /// <exception cref="ArgumentException">The VTCR value is invalid (the message gives the reason).</exception>
    public static Stage2PageTable Create(VtcrEl2 vtcr, Stage2Features features, Stage2TableOptions? options = null) =>
        new(vtcr.Validate(features).GetOrThrow(), options);

    public Stage2Geometry Geometry => _geometry;

    public Stage2TableOptions Options { get; }

    public ushort Vmid => Options.Vmid;

    /// <summary>HCR_EL2.FWB in use for this VM.</summary>
    public bool Fwb => Options.Fwb;

    /// <summary>CTR_EL0.DIC.</summary>
    public bool Dic => Options.Dic;

    /// <summary>The MemAttr Linux writes for NORMAL memory with this FWB setting (KVM_S2_MEMATTR(pgt, NORMAL)): 6 with FWB, 0xF without.</summary>
    public byte NormalMemAttr => Fwb ? (byte)6 : (byte)0xF;

    /// <summary>Physical address of the start-level table (VTTBR_EL2.BADDR).</summary>
    public ulong RootPa => _rootPa;

    /// <summary>VTTBR_EL2: VMID in [63:48], BADDR (with BADDR[51:48] in bits [5:2] for 52-bit PA), CnP = 0.</summary>
    public ulong Vttbr => ((ulong)Vmid << 48) | (_rootPa & 0x0000_FFFF_FFFF_FFFEUL) | (((_rootPa >> 48) & 0xF) << 2);

    public IStage2TableMemory Memory => _memory;

    public Stage2Tlb Tlb => _tlb;

    public Stage2Counters Counters { get; } = new();

    /// <summary>Recorded events (empty unless <see cref="Stage2TableOptions.RecordEvents"/>).</summary>
    public IReadOnlyList<Stage2Event> Events => (IReadOnlyList<Stage2Event>?)_events ?? [];

    /// <summary>Events not kept because <see cref="Stage2TableOptions.MaxEvents"/> was reached.</summary>
    public long EventsDropped { get; private set; }

    /// <summary>Table pages this VM's tables use, the start level included.</summary>
    public long TablePages => _tablePages;

    /// <summary>Bytes of table memory this VM's tables use (what the hardware needs: pages × granule).</summary>
    public long TableBytes => _tablePages << _granule.Shift();

    /// <summary>Clears the recorded events.</summary>
    public void ClearEvents()
    {
        _events?.Clear();
        EventsDropped = 0;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Small helpers shared by the visitors.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Follow(ulong desc) => new S2Descriptor(desc).Address(_granule, _format);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsValid(ulong desc) => (desc & B.Valid) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsTable(ulong desc, int level) => level < 3 && (desc & 3) == 3;

    /// <summary>stage2_pte_cacheable: a valid leaf whose MemAttr is the NORMAL encoding for this FWB setting.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsCacheable(ulong desc) => IsValid(desc) && ((desc & B.MemAttrMask) >> B.MemAttrShift) == NormalMemAttr;

    /// <summary>stage2_pte_executable: a valid leaf with XN[1] clear.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsExecutable(ulong desc) => IsValid(desc) && (desc & B.Xn1) == 0;

    private void Record(Stage2EventKind kind, ulong ipa, ulong size, int level, ulong oldDesc, ulong newDesc)
    {
        if (_events is null)
        {
            return;
        }

        if (_events.Count >= _maxEvents)
        {
            EventsDropped++;
            return;
        }

        _events.Add(new Stage2Event(kind, ipa, size, level, oldDesc, newDesc));
    }

    private bool TryAllocTable(out ulong pa)
    {
        if (!_memory.TryZallocPages(1, out pa))
        {
            return false;
        }

        _tablePages++;
        Counters.TablesAllocated++;
        return true;
    }

    private void FreeTable(ulong pa)
    {
        _installedLevel = -1;
        _memory.FreePages(pa, 1);
        _tablePages--;
        Counters.TablesFreed++;
    }

    /// <summary>Frees a table that is no longer linked, and every table below it (free_unlinked_table).</summary>
    private void FreeUnlinkedTable(ulong tablePa, int tableLevel)
    {
        if (tableLevel < 3)
        {
            Span<ulong> t = _memory.PhysToVirt(tablePa, _geometry.EntriesPerTable);
            for (int i = 0; i < t.Length; i++)
            {
                if (IsTable(t[i], tableLevel))
                {
                    FreeUnlinkedTable(Follow(t[i]), tableLevel + 1);
                }
            }
        }

        FreeTable(tablePa);
    }

    /// <summary>TLBI by IPA with the level as TTL hint (__kvm_tlb_flush_vmid_ipa).</summary>
    public void InvalidateTlbIpa(ulong ipa, int level)
    {
        Counters.TlbiByIpa++;
        _tlb.InvalidateIpa(Vmid, ipa, level);
        Record(Stage2EventKind.TlbiIpa, ipa, _geometry.LevelSize(level), level, 0, 0);
    }

    /// <summary>TLBI by IPA range (kvm_tlb_flush_vmid_range).</summary>
    public void InvalidateTlbRange(ulong ipa, ulong size)
    {
        Counters.TlbiByRange++;
        _tlb.InvalidateRange(Vmid, ipa, size);
        Record(Stage2EventKind.TlbiRange, ipa, size, -1, 0, 0);
    }

    /// <summary>TLBI of this VM's VMID (kvm_flush_remote_tlbs / __kvm_tlb_flush_vmid), what callers of <see cref="WriteProtect"/> do.</summary>
    public void InvalidateTlbVmid()
    {
        Counters.TlbiByVmid++;
        _tlb.InvalidateVmid(Vmid);
        Record(Stage2EventKind.TlbiVmid, 0, _geometry.IpaSpace, -1, 0, 0);
    }

    /// <summary>
    /// stage2_try_break_pte: make a valid entry invalid and invalidate what the TLB may hold for it (by IPA for a leaf,
    /// by range for a table), so that no CPU sees old and new at once. Invalid entries need nothing.
    /// </summary>
    private void BreakPte(ref S2VisitContext ctx, bool invalidateTlb = true)
    {
        _installedLevel = -1;
        ulong old = ctx.Old;
        if (!IsValid(old))
        {
            return;
        }

        ctx.Ptep = 0;
        Counters.BreakBeforeMake++;
        ulong size = _geometry.LevelSize(ctx.Level);
        ulong addr = ctx.Addr & ~(size - 1);
        Record(Stage2EventKind.BreakBeforeMake, addr, size, ctx.Level, old, 0);
        if (!invalidateTlb)
        {
            return;
        }

        if (IsTable(old, ctx.Level))
        {
            InvalidateTlbRange(addr, size);
        }
        else
        {
            InvalidateTlbIpa(addr, ctx.Level);
        }
    }

    private static void AddCmo(List<S2CacheMaintenance>? cmos, CacheOp kind, ulong ipa, ulong pa, ulong size)
    {
        if (cmos is null)
        {
            return;
        }

        if (cmos.Count > 0)
        {
            ref S2CacheMaintenance last = ref CollectionsMarshal.AsSpan(cmos)[^1];
            if (last.Kind == kind && last.Ipa + last.Size == ipa && last.Pa + last.Size == pa)
            {
                last = last with { Size = last.Size + size };
                return;
            }
        }

        cmos.Add(new S2CacheMaintenance(kind, ipa, pa, size));
    }

    /// <summary>The CMOs before a new leaf becomes visible (stage2_map_walker_try_leaf), per docs/arm-reference.md#cmo.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NewLeafCmos(ulong desc, ulong ipa, ulong size, List<S2CacheMaintenance>? cmos)
    {
        // dcache_clean_inval_poc for a cacheable leaf; the host callback returns at once with FWB.
        if (!Fwb && IsCacheable(desc))
        {
            Counters.DcacheCleanInvalidatePoc++;
            AddCmo(cmos, CacheOp.DcCivac, ipa, Follow(desc) & ~(size - 1), size);
        }

        // icache_inval_pou for an executable leaf; only an ISB with DIC.
        if (!Dic && IsExecutable(desc))
        {
            Counters.IcacheInvalidatePou++;
            AddCmo(cmos, CacheOp.IcIvau, ipa, Follow(desc) & ~(size - 1), size);
        }
    }

    private Stage2Errno CheckRange(ulong ipa, ulong size)
    {
        ulong gmask = _geometry.TableBytes - 1;
        if (size == 0 || ((ipa | size) & gmask) != 0)
        {
            return Stage2Errno.EINVAL;
        }

        return ipa + size < ipa || ipa + size > _geometry.IpaSpace ? Stage2Errno.ERANGE : Stage2Errno.None;
    }

    private static Stage2Errno ToErrno(int ret) => (Stage2Errno)(-ret);
}
