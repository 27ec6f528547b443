using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// The memslots of one address space: a sorted, non-overlapping collection indexed by gfn and by id.
/// <para>
/// The gfn index is a two-level B+-tree stored flat. Leaves hold up to <see cref="LeafCapacity"/> slots each and live
/// side by side in shared arrays (leaf <c>p</c> owns elements <c>[p * LeafCapacity, (p + 1) * LeafCapacity)</c>):
/// the bases in one array, padded with <see cref="ulong.MaxValue"/>, and (end, slot) pairs in another. The leaves'
/// first bases are kept in gfn order in one array (padded the same way) with a small summary of every
/// <see cref="TopGroup"/>th of them. A lookup counts keys &lt;= gfn with vector compares over the summary, one group of
/// leaf keys and one leaf (fixed widths, no branch on a key), then reads one (end, slot) pair: no chain of
/// binary-search probes and no per-leaf heap object on the way. An insert or delete shifts at most one leaf and, on a
/// split, merge or emptied leaf, the leaf-key array (at most a few tens of KiB with 32,767 slots). A full leaf splits
/// in halves, or, when a slot is appended past the last one, starts a new leaf so that in-order creation packs leaves;
/// after a delete, neighbours that fit in half a leaf merge, so any two adjacent leaves hold more than half a leaf and
/// the leaf count (and the summary a lookup scans) stays proportional to the slot count. The last slot found is
/// cached (the kernel's last_used_slot).
/// </para>
/// </summary>
public sealed class MemslotSet
{
    /// <summary>Slots per leaf: four cache lines of bases.</summary>
    internal const int LeafCapacity = 32;

    /// <summary>Leaf keys per summary entry.</summary>
    internal const int TopGroup = 32;

    /// <summary>
    /// Summary length granule (the widest vector of ulongs), so counts never need a tail loop; LeafCapacity and
    /// TopGroup are multiples of it.
    /// </summary>
    private const int TopGranule = 8;

    private readonly Memslot?[] _byId;

    // Leaves, by physical index p. Unused base elements hold ulong.MaxValue, unused entries default.
    private ulong[] _base = [];
    private Entry[] _entry = [];
    private int[] _leafSlots = [];
    private int _leavesAllocated;
    private readonly Stack<int> _freeLeaves = new();

    // Leaves in gfn order: first base and physical index. Length a multiple of TopGroup; unused keys ulong.MaxValue.
    private ulong[] _leafFirst = [];
    private int[] _leafPhys = [];
    private int _leaves;

    /// <summary>_leafFirst[k * TopGroup] for each group (ulong.MaxValue past the last), length a multiple of TopGranule.</summary>
    private ulong[] _top = [];

    // last_used_slot, with its range inline so the check needs no dereference (npages 0 when none).
    private Memslot? _lastUsed;
    private ulong _lastBase;
    private ulong _lastNPages;

    private struct Entry
    {
        public ulong End;
        public Memslot Slot;
    }

    public MemslotSet(int slotsNum) => _byId = new Memslot?[slotsNum];

    /// <summary>Number of slots present.</summary>
    public int Count { get; private set; }

    /// <summary>Sum of npages over all slots (kvm->nr_memslot_pages).</summary>
    public ulong TotalPages { get; private set; }

    /// <summary>Number of leaves in use (for tests of the split and merge rules).</summary>
    internal int LeafCount => _leaves;

    /// <summary>id_to_memslot(): the slot with this id, or null.</summary>
    public Memslot? ById(int id) => (uint)id < (uint)_byId.Length ? _byId[id] : null;

    /// <summary>gfn_to_memslot(): the slot containing <paramref name="gfn"/>, or null.</summary>
    public Memslot? Find(ulong gfn)
    {
        if (gfn - _lastBase < _lastNPages)
            return _lastUsed;
        var s = FindSlow(gfn);
        if (s is not null)
            SetLastUsed(s);
        return s;
    }

    private void SetLastUsed(Memslot? s)
    {
        _lastUsed = s;
        _lastBase = s?.BaseGfn ?? 0;
        _lastNPages = s?.NPages ?? 0;
    }

    private Memslot? FindSlow(ulong gfn)
    {
        // Padding keys are ulong.MaxValue; no slot can contain that gfn (base + npages would overflow).
        if (gfn == ulong.MaxValue || _leaves == 0)
            return null;
        var groups = CountLessOrEqual(ref MemoryMarshal.GetArrayDataReference(_top), _top.Length, gfn);
        if (groups == 0)
            return null;
        // The chosen group starts with a key <= gfn and is padded with MaxValue: 1 <= count, and li < _leaves.
        var lo = (groups - 1) * TopGroup;
        ref var first = ref MemoryMarshal.GetArrayDataReference(_leafFirst);
        var li = lo + CountLessOrEqual(ref Unsafe.Add(ref first, lo), TopGroup, gfn) - 1;
        var leaf = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_leafPhys), li) * LeafCapacity;
        // The leaf's first base is _leafFirst[li] <= gfn, so i >= leaf.
        var i = leaf + CountLessOrEqual(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_base), leaf), LeafCapacity, gfn) - 1;
        ref var e = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entry), i);
        return gfn < e.End ? e.Slot : null;
    }

    /// <summary>Number of elements &lt;= <paramref name="key"/> in p[0..n); n is a multiple of <see cref="TopGranule"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int CountLessOrEqual(ref ulong p, int n, ulong key)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var k = Vector512.Create(key);
            var c = 0;
            for (var j = 0; j < n; j += Vector512<ulong>.Count)
                c += BitOperations.PopCount(Vector512.LessThanOrEqual(Vector512.LoadUnsafe(ref p, (nuint)j), k).ExtractMostSignificantBits());
            return c;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var k = Vector256.Create(key);
            var acc = Vector256<ulong>.Zero;
            for (var j = 0; j < n; j += Vector256<ulong>.Count)
                acc -= Vector256.LessThanOrEqual(Vector256.LoadUnsafe(ref p, (nuint)j), k);
            return (int)Vector256.Sum(acc);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var k = Vector128.Create(key);
            var acc = Vector128<ulong>.Zero;
            for (var j = 0; j < n; j += Vector128<ulong>.Count)
                acc -= Vector128.LessThanOrEqual(Vector128.LoadUnsafe(ref p, (nuint)j), k);
            return (int)Vector128.Sum(acc);
        }
        var count = 0;
        for (var j = 0; j < n; j++)
            count += Unsafe.Add(ref p, j) <= key ? 1 : 0;
        return count;
    }

    /// <summary>Index of the first element greater than <paramref name="key"/> in a[start..start + n), relative to start.</summary>
    private static int UpperBound(ulong[] a, int start, int n, ulong key)
    {
        int lo = 0, hi = n;
        while (lo < hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            if (a[start + mid] <= key)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>The leaf (in gfn order) whose range holds <paramref name="key"/>: the last with first base &lt;= key, or -1.</summary>
    private int LeafFor(ulong key) => UpperBound(_leafFirst, 0, _leaves, key) - 1;

    /// <summary>
    /// kvm_check_memslot_overlap(): true if a slot other than <paramref name="exceptId"/> intersects [start, end).
    /// Slots are sorted and disjoint, so only the last one or two slots starting below <paramref name="end"/> can.
    /// </summary>
    public bool Overlaps(ulong start, ulong end, int exceptId)
    {
        if (end <= start)
            return false;
        // Walk back from the last slot starting before end; ends are sorted too, so stop once one ends at or below start.
        var li = LeafFor(end - 1);
        if (li < 0)
            return false;
        var leaf = _leafPhys[li] * LeafCapacity;
        var i = UpperBound(_base, leaf, _leafSlots[_leafPhys[li]], end - 1) - 1;
        for (var steps = 0; steps < 2; steps++)
        {
            if (i < 0)
            {
                if (--li < 0)
                    return false;
                leaf = _leafPhys[li] * LeafCapacity;
                i = _leafSlots[_leafPhys[li]] - 1;
            }
            ref var e = ref _entry[leaf + i];
            if (e.End <= start)
                return false;
            if (e.Slot.Id != exceptId)
                return true;
            i--;
        }
        return false;
    }

    /// <summary>Slots in gfn order.</summary>
    public IEnumerable<Memslot> InGfnOrder()
    {
        for (var li = 0; li < _leaves; li++)
        {
            var p = _leafPhys[li];
            for (var i = 0; i < _leafSlots[p]; i++)
                yield return _entry[p * LeafCapacity + i].Slot;
        }
    }

    /// <summary>Adds a slot; the caller has checked id and overlap.</summary>
    internal void Add(Memslot slot)
    {
        _byId[slot.Id] = slot;
        Count++;
        TotalPages += slot.NPages;
        if (_leaves == 0)
            InsertLeaf(0, AllocateLeaf(), slot.BaseGfn);
        var li = Math.Max(0, LeafFor(slot.BaseGfn));
        if (_leafSlots[_leafPhys[li]] == LeafCapacity)
        {
            var appending = li == _leaves - 1 && slot.BaseGfn > _base[_leafPhys[li] * LeafCapacity + LeafCapacity - 1];
            SplitLeaf(li, appending ? slot.BaseGfn : null);
            if (appending || slot.BaseGfn >= _leafFirst[li + 1])
                li++;
        }
        var p = _leafPhys[li];
        var leaf = p * LeafCapacity;
        var n = _leafSlots[p];
        var pos = UpperBound(_base, leaf, n, slot.BaseGfn);
        if (n - pos > 0)
        {
            Array.Copy(_base, leaf + pos, _base, leaf + pos + 1, n - pos);
            Array.Copy(_entry, leaf + pos, _entry, leaf + pos + 1, n - pos);
        }
        _base[leaf + pos] = slot.BaseGfn;
        _entry[leaf + pos] = new Entry { End = slot.EndGfn, Slot = slot };
        _leafSlots[p] = n + 1;
        SetLeafFirst(li, _base[leaf]);
    }

    /// <summary>Removes a slot that is present.</summary>
    internal void Remove(Memslot slot)
    {
        if (_byId[slot.Id] != slot)
            return;
        _byId[slot.Id] = null;
        Count--;
        TotalPages -= slot.NPages;
        if (_lastUsed == slot)
            SetLastUsed(null);
        var li = LeafFor(slot.BaseGfn);
        var p = _leafPhys[li];
        var leaf = p * LeafCapacity;
        var n = _leafSlots[p];
        var pos = UpperBound(_base, leaf, n, slot.BaseGfn) - 1;
        if (n - pos - 1 > 0)
        {
            Array.Copy(_base, leaf + pos + 1, _base, leaf + pos, n - pos - 1);
            Array.Copy(_entry, leaf + pos + 1, _entry, leaf + pos, n - pos - 1);
        }
        n--;
        _base[leaf + n] = ulong.MaxValue;
        _entry[leaf + n] = default;
        _leafSlots[p] = n;
        if (n == 0)
        {
            RemoveLeaf(li);
        }
        else
        {
            SetLeafFirst(li, _base[leaf]);
            // Merge with a neighbour when both fit in half a leaf: any two adjacent leaves then hold more than
            // LeafCapacity / 2 slots, which bounds the leaf count (and the lookup's summary) by the slot count.
            if (li + 1 < _leaves && n + _leafSlots[_leafPhys[li + 1]] <= LeafCapacity / 2)
                MergeIntoLeft(li);
            else if (li > 0 && n + _leafSlots[_leafPhys[li - 1]] <= LeafCapacity / 2)
                MergeIntoLeft(li - 1);
        }
    }

    /// <summary>Replaces a slot by another with the same id and gfn range (FLAGS_ONLY).</summary>
    internal void Replace(Memslot old, Memslot slot)
    {
        var li = LeafFor(old.BaseGfn);
        var p = _leafPhys[li];
        var pos = UpperBound(_base, p * LeafCapacity, _leafSlots[p], old.BaseGfn) - 1;
        _entry[p * LeafCapacity + pos].Slot = slot;
        _byId[slot.Id] = slot;
        if (_lastUsed == old)
            SetLastUsed(slot);
    }

    /// <summary>A physical leaf, empty (bases MaxValue, entries default), from the free list or by growing the arrays.</summary>
    private int AllocateLeaf()
    {
        if (_freeLeaves.Count > 0)
            return _freeLeaves.Pop();
        if (_leavesAllocated == _leafSlots.Length)
        {
            var cap = Math.Max(4, _leafSlots.Length * 2); // 4 leaves (3 KiB) for the usual handful of slots
            var oldLen = _base.Length;
            Array.Resize(ref _base, cap * LeafCapacity);
            Array.Fill(_base, ulong.MaxValue, oldLen, _base.Length - oldLen);
            Array.Resize(ref _entry, cap * LeafCapacity);
            Array.Resize(ref _leafSlots, cap);
        }
        return _leavesAllocated++;
    }

    private void FreeLeaf(int p)
    {
        Array.Fill(_base, ulong.MaxValue, p * LeafCapacity, LeafCapacity);
        Array.Clear(_entry, p * LeafCapacity, LeafCapacity);
        _leafSlots[p] = 0;
        _freeLeaves.Push(p);
    }

    /// <summary>Puts physical leaf <paramref name="p"/> with first base <paramref name="first"/> at position <paramref name="li"/> of the gfn order.</summary>
    private void InsertLeaf(int li, int p, ulong first)
    {
        if (_leaves == _leafFirst.Length)
        {
            var oldLen = _leafFirst.Length;
            Array.Resize(ref _leafFirst, oldLen + Math.Max(TopGroup, oldLen));
            Array.Fill(_leafFirst, ulong.MaxValue, oldLen, _leafFirst.Length - oldLen);
            Array.Resize(ref _leafPhys, _leafFirst.Length);
            var topLen = (_leafFirst.Length / TopGroup + TopGranule - 1) / TopGranule * TopGranule;
            _top = new ulong[topLen];
        }
        Array.Copy(_leafFirst, li, _leafFirst, li + 1, _leaves - li);
        Array.Copy(_leafPhys, li, _leafPhys, li + 1, _leaves - li);
        _leafFirst[li] = first;
        _leafPhys[li] = p;
        _leaves++;
        RebuildTop();
    }

    /// <summary>Drops position <paramref name="li"/> from the gfn order and frees its physical leaf.</summary>
    private void RemoveLeaf(int li)
    {
        FreeLeaf(_leafPhys[li]);
        Array.Copy(_leafFirst, li + 1, _leafFirst, li, _leaves - li - 1);
        Array.Copy(_leafPhys, li + 1, _leafPhys, li, _leaves - li - 1);
        _leaves--;
        _leafFirst[_leaves] = ulong.MaxValue;
        _leafPhys[_leaves] = 0;
        RebuildTop();
    }

    /// <summary>
    /// Moves the upper half of full leaf <paramref name="li"/> into a new leaf right after it. When a slot is appended
    /// past the last one (<paramref name="appendedBase"/>; VMMs create slots in gfn order), the full leaf stays full and
    /// the new leaf starts empty for it, so in-order creation packs leaves (the last leaf has no right neighbour, so the
    /// merge rule still holds).
    /// </summary>
    private void SplitLeaf(int li, ulong? appendedBase)
    {
        var right = AllocateLeaf();
        var p = _leafPhys[li];
        if (appendedBase is { } first)
        {
            InsertLeaf(li + 1, right, first);
            return;
        }
        var half = LeafCapacity / 2;
        var n = _leafSlots[p] - half;
        Array.Copy(_base, p * LeafCapacity + half, _base, right * LeafCapacity, n);
        Array.Copy(_entry, p * LeafCapacity + half, _entry, right * LeafCapacity, n);
        Array.Fill(_base, ulong.MaxValue, p * LeafCapacity + half, n);
        Array.Clear(_entry, p * LeafCapacity + half, n);
        _leafSlots[right] = n;
        _leafSlots[p] = half;
        InsertLeaf(li + 1, right, _base[right * LeafCapacity]);
    }

    /// <summary>Appends leaf <paramref name="li"/> + 1 to leaf <paramref name="li"/> (they fit together) and drops it.</summary>
    private void MergeIntoLeft(int li)
    {
        var p = _leafPhys[li];
        var q = _leafPhys[li + 1];
        var n = _leafSlots[p];
        var m = _leafSlots[q];
        Array.Copy(_base, q * LeafCapacity, _base, p * LeafCapacity + n, m);
        Array.Copy(_entry, q * LeafCapacity, _entry, p * LeafCapacity + n, m);
        _leafSlots[p] = n + m; // p keeps its first base
        RemoveLeaf(li + 1);
    }

    /// <summary>Sets the first base of leaf <paramref name="li"/> (in gfn order) and its summary entry if it heads a group.</summary>
    private void SetLeafFirst(int li, ulong first)
    {
        _leafFirst[li] = first;
        if (li % TopGroup == 0)
            _top[li / TopGroup] = first;
    }

    private void RebuildTop()
    {
        for (var k = 0; k < _top.Length; k++)
            _top[k] = k * TopGroup < _leaves ? _leafFirst[k * TopGroup] : ulong.MaxValue;
    }

    /// <summary>Checks the index's invariants (tests only): sorted, padded, consistent counts, bounded leaf count.</summary>
    internal void CheckInvariants()
    {
        var total = 0;
        var prevEnd = 0UL;
        var seen = new HashSet<int>();
        for (var li = 0; li < _leaves; li++)
        {
            var p = _leafPhys[li];
            if (!seen.Add(p))
                throw new InvalidOperationException($"leaf {p} used twice");
            var n = _leafSlots[p];
            if (n < 1 || n > LeafCapacity)
                throw new InvalidOperationException($"leaf {li} holds {n}");
            if (_leafFirst[li] != _base[p * LeafCapacity])
                throw new InvalidOperationException($"leaf {li} key {_leafFirst[li]:x} != first base {_base[p * LeafCapacity]:x}");
            if (li + 1 < _leaves && n + _leafSlots[_leafPhys[li + 1]] <= LeafCapacity / 2)
                throw new InvalidOperationException($"leaves {li} and {li + 1} should have been merged");
            for (var i = 0; i < LeafCapacity; i++)
            {
                var b = _base[p * LeafCapacity + i];
                var e = _entry[p * LeafCapacity + i];
                if (i >= n)
                {
                    if (b != ulong.MaxValue || e.Slot is not null)
                        throw new InvalidOperationException($"leaf {li} element {i} is not padding");
                    continue;
                }
                if (b != e.Slot.BaseGfn || e.End != e.Slot.EndGfn || b < prevEnd)
                    throw new InvalidOperationException($"leaf {li} element {i} out of order or stale");
                prevEnd = e.End;
                total++;
            }
        }
        for (var li = _leaves; li < _leafFirst.Length; li++)
        {
            if (_leafFirst[li] != ulong.MaxValue)
                throw new InvalidOperationException($"leaf key {li} is not padding");
        }
        for (var k = 0; k < _top.Length; k++)
        {
            if (_top[k] != (k * TopGroup < _leaves ? _leafFirst[k * TopGroup] : ulong.MaxValue))
                throw new InvalidOperationException($"summary {k} is stale");
        }
        if (total != Count)
            throw new InvalidOperationException($"{total} slots indexed, Count {Count}");
        if (seen.Count + _freeLeaves.Count != _leavesAllocated)
            throw new InvalidOperationException("leaked a leaf");
    }
}
