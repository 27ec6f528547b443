using System.Runtime.CompilerServices;

namespace S2Lab.Arch.Translation;

/// <summary>A cached stage-2 leaf: the descriptor as it was when the walk filled the entry, and its level.</summary>
public readonly record struct S2TlbEntry(S2Descriptor Descriptor, int Level);

/// <summary>
/// A stage-2 TLB shared by the VMs of a host, tagged by VMID. One direct-mapped array per leaf level (page, and each
/// block level), so a page hit is a single probe and an invalidation by IPA is one probe per level. Entries stay until
/// they are invalidated (by IPA, by IPA range, by VMID, or all) or evicted by a conflicting fill, so a missing
/// invalidation shows up as a stale translation, as on hardware. Only valid leaves with AF = 1 are cached; faults are
/// never cached.
/// </summary>
public sealed class Stage2Tlb
{
    private struct Entry
    {
        public ulong Tag;
        public ulong Descriptor;
        public uint Generation;
        public ushort Vmid;
    }

    private readonly Entry[][] _levels = new Entry[4][];
    private readonly uint[] _vmidGeneration = new uint[65536];
    private readonly int _mask;
    private readonly int _granuleShift;
    private readonly int _stride;

    /// <summary>Creates a TLB for tables of <paramref name="granule"/> with 2^<paramref name="entriesLog2"/> entries per leaf level.</summary>
    public Stage2Tlb(Granule granule = Granule.Size4K, int entriesLog2 = 12)
    {
        if (entriesLog2 is < 1 or > 24)
        {
            throw new ArgumentOutOfRangeException(nameof(entriesLog2));
        }

        Granule = granule;
        _granuleShift = granule.Shift();
        _stride = granule.Stride();
        _mask = (1 << entriesLog2) - 1;
        for (int i = 0; i < 4; i++)
        {
            _levels[i] = new Entry[1 << entriesLog2];
        }

        Array.Fill(_vmidGeneration, 1u);
    }

    public Granule Granule { get; }

    /// <summary>Entries per leaf level.</summary>
    public int EntriesPerLevel => _mask + 1;

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    /// <summary>TLBI by IPA operations received (TLBI IPAS2E1IS and the like).</summary>
    public long InvalidationsByIpa { get; private set; }

    /// <summary>TLBI by IPA range operations received (TLBI RIPAS2E1IS).</summary>
    public long InvalidationsByRange { get; private set; }

    /// <summary>TLBI by VMID operations received (TLBI VMALLS12E1IS).</summary>
    public long InvalidationsByVmid { get; private set; }

    /// <summary>TLBI ALLE1 operations received.</summary>
    public long InvalidationsAll { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Shift(int level) => _granuleShift + (3 - level) * _stride;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(ulong tag, ushort vmid) => (int)((tag ^ ((ulong)vmid * 0x9E3779B1UL)) & (ulong)_mask);

    /// <summary>Looks up the leaf translating <paramref name="ipa"/> for <paramref name="vmid"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryLookup(ushort vmid, ulong ipa, out S2TlbEntry entry)
    {
        uint gen = _vmidGeneration[vmid];
        for (int level = 3; level >= 0; level--)
        {
            ulong tag = ipa >> Shift(level);
            ref Entry e = ref _levels[level][Slot(tag, vmid)];
            if (e.Tag == tag && e.Generation == gen && e.Vmid == vmid)
            {
                Hits++;
                entry = new S2TlbEntry(new S2Descriptor(e.Descriptor), level);
                return true;
            }
        }

        Misses++;
        entry = default;
        return false;
    }

    /// <summary>Caches a leaf found by a walk (replacing whatever occupied the slot).</summary>
    public void Fill(ushort vmid, ulong ipa, S2Descriptor leaf, int level)
    {
        if (level is < 0 or > 3)
        {
            return;
        }

        ulong tag = ipa >> Shift(level);
        ref Entry e = ref _levels[level][Slot(tag, vmid)];
        e.Tag = tag;
        e.Descriptor = leaf.Raw;
        e.Vmid = vmid;
        e.Generation = _vmidGeneration[vmid];
    }

    /// <summary>
    /// TLBI by IPA: drops entries of <paramref name="vmid"/> that translate <paramref name="ipa"/>. With a level hint
    /// (TTL) only entries of that level are looked at, as hardware may do; a wrong hint leaves the entry stale.
    /// </summary>
    public void InvalidateIpa(ushort vmid, ulong ipa, int? levelHint = null)
    {
        InvalidationsByIpa++;
        uint gen = _vmidGeneration[vmid];
        for (int level = 0; level <= 3; level++)
        {
            if (levelHint is { } hint && hint != level)
            {
                continue;
            }

            ulong tag = ipa >> Shift(level);
            ref Entry e = ref _levels[level][Slot(tag, vmid)];
            if (e.Tag == tag && e.Vmid == vmid && e.Generation == gen)
            {
                e = default;
            }
        }
    }

    /// <summary>TLBI by IPA range: drops every entry of <paramref name="vmid"/> overlapping [ipa, ipa + size).</summary>
    public void InvalidateRange(ushort vmid, ulong ipa, ulong size)
    {
        InvalidationsByRange++;
        if (size == 0)
        {
            return;
        }

        if ((size >> _granuleShift) > (ulong)(_mask + 1))
        {
            // More pages than entries: cheaper to drop the whole VMID, which is also what Linux does above
            // MAX_TLBI_RANGE_PAGES.
            _vmidGeneration[vmid]++;
            return;
        }

        uint gen = _vmidGeneration[vmid];
        ulong last = ipa + size - 1;
        for (int level = 0; level <= 3; level++)
        {
            int shift = Shift(level);
            for (ulong tag = ipa >> shift; tag <= last >> shift; tag++)
            {
                ref Entry e = ref _levels[level][Slot(tag, vmid)];
                if (e.Tag == tag && e.Vmid == vmid && e.Generation == gen)
                {
                    e = default;
                }
            }
        }
    }

    /// <summary>TLBI VMALLS12E1IS: drops every entry of <paramref name="vmid"/>.</summary>
    public void InvalidateVmid(ushort vmid)
    {
        InvalidationsByVmid++;
        _vmidGeneration[vmid]++;
        if (_vmidGeneration[vmid] == 0)
        {
            // Generation wrapped: clear for real so that no old entry can match again.
            foreach (var level in _levels)
            {
                for (int i = 0; i < level.Length; i++)
                {
                    if (level[i].Vmid == vmid)
                    {
                        level[i] = default;
                    }
                }
            }

            _vmidGeneration[vmid] = 1;
        }
    }

    /// <summary>TLBI ALLE1IS: drops every entry.</summary>
    public void InvalidateAll()
    {
        InvalidationsAll++;
        foreach (var level in _levels)
        {
            Array.Clear(level);
        }
    }

    /// <summary>Valid entries held for <paramref name="vmid"/> (for tests and reports).</summary>
    public int CountEntries(ushort vmid)
    {
        int n = 0;
        uint gen = _vmidGeneration[vmid];
        foreach (var level in _levels)
        {
            foreach (ref readonly Entry e in level.AsSpan())
            {
                if (e.Vmid == vmid && e.Generation == gen && e.Descriptor != 0)
                {
                    n++;
                }
            }
        }

        return n;
    }
}
