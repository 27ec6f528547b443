namespace S2Lab.Kernel.Kvm;

/// <summary>
/// The memslots of one address space: a sorted, non-overlapping collection indexed by gfn and by id.
/// <para>
/// The gfn index is a two-level B+-tree: up to <see cref="ChunkCapacity"/> slots per leaf chunk, chunk keys in one
/// sorted array. A lookup is two binary searches over contiguous arrays (~16 comparisons for 32,767 slots); an insert
/// or delete shifts at most one chunk and, rarely, the chunk-key array, so no update copies the whole collection.
/// </para>
/// </summary>
public sealed class MemslotSet
{
    internal const int ChunkCapacity = 128;

    private readonly Memslot?[] _byId;
    private Chunk[] _chunks = new Chunk[16];
    private ulong[] _chunkFirst = new ulong[16];
    private int _chunkCount;
    private Memslot? _lastUsed;

    private sealed class Chunk
    {
        public readonly ulong[] Base = new ulong[ChunkCapacity];
        public readonly ulong[] End = new ulong[ChunkCapacity];
        public readonly Memslot[] Slots = new Memslot[ChunkCapacity];
        public int Count;
    }

    public MemslotSet(int slotsNum) => _byId = new Memslot?[slotsNum];

    /// <summary>Number of slots present.</summary>
    public int Count { get; private set; }

    /// <summary>Sum of npages over all slots (kvm->nr_memslot_pages).</summary>
    public ulong TotalPages { get; private set; }

    /// <summary>id_to_memslot(): the slot with this id, or null.</summary>
    public Memslot? ById(int id) => (uint)id < (uint)_byId.Length ? _byId[id] : null;

    /// <summary>gfn_to_memslot(): the slot containing <paramref name="gfn"/>, or null.</summary>
    public Memslot? Find(ulong gfn)
    {
        var last = _lastUsed;
        if (last is not null && gfn - last.BaseGfn < last.NPages)
            return last;
        var s = FindSlow(gfn);
        if (s is not null)
            _lastUsed = s;
        return s;
    }

    private Memslot? FindSlow(ulong gfn)
    {
        var ci = UpperBound(_chunkFirst, _chunkCount, gfn) - 1;
        if (ci < 0)
            return null;
        var c = _chunks[ci];
        var i = UpperBound(c.Base, c.Count, gfn) - 1;
        return i >= 0 && gfn < c.End[i] ? c.Slots[i] : null;
    }

    /// <summary>Index of the first element greater than <paramref name="key"/> in a[0..n).</summary>
    private static int UpperBound(ulong[] a, int n, ulong key)
    {
        int lo = 0, hi = n;
        while (lo < hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            if (a[mid] <= key)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// kvm_check_memslot_overlap(): true if a slot other than <paramref name="exceptId"/> intersects [start, end).
    /// Slots are sorted and disjoint, so only the last one or two slots starting below <paramref name="end"/> can.
    /// </summary>
    public bool Overlaps(ulong start, ulong end, int exceptId)
    {
        if (end <= start)
            return false;
        // Walk back from the last slot starting before end; ends are sorted too, so stop once one ends at or below start.
        var ci = UpperBound(_chunkFirst, _chunkCount, end - 1) - 1;
        if (ci < 0)
            return false;
        var i = UpperBound(_chunks[ci].Base, _chunks[ci].Count, end - 1) - 1;
        for (var steps = 0; steps < 2; steps++)
        {
            if (i < 0)
            {
                if (--ci < 0)
                    return false;
                i = _chunks[ci].Count - 1;
            }
            var c = _chunks[ci];
            if (c.End[i] <= start)
                return false;
            if (c.Slots[i].Id != exceptId)
                return true;
            i--;
        }
        return false;
    }

    /// <summary>Slots in gfn order.</summary>
    public IEnumerable<Memslot> InGfnOrder()
    {
        for (var ci = 0; ci < _chunkCount; ci++)
        {
            var c = _chunks[ci];
            for (var i = 0; i < c.Count; i++)
                yield return c.Slots[i];
        }
    }

    /// <summary>Adds a slot; the caller has checked id and overlap.</summary>
    internal void Add(Memslot slot)
    {
        _byId[slot.Id] = slot;
        Count++;
        TotalPages += slot.NPages;
        if (_chunkCount == 0)
        {
            _chunks[0] = new Chunk();
            _chunkCount = 1;
        }
        var ci = Math.Max(0, UpperBound(_chunkFirst, _chunkCount, slot.BaseGfn) - 1);
        var c = _chunks[ci];
        if (c.Count == ChunkCapacity)
        {
            SplitChunk(ci);
            if (slot.BaseGfn >= _chunkFirst[ci + 1])
                ci++;
            c = _chunks[ci];
        }
        var pos = UpperBound(c.Base, c.Count, slot.BaseGfn);
        var move = c.Count - pos;
        if (move > 0)
        {
            Array.Copy(c.Base, pos, c.Base, pos + 1, move);
            Array.Copy(c.End, pos, c.End, pos + 1, move);
            Array.Copy(c.Slots, pos, c.Slots, pos + 1, move);
        }
        c.Base[pos] = slot.BaseGfn;
        c.End[pos] = slot.EndGfn;
        c.Slots[pos] = slot;
        c.Count++;
        _chunkFirst[ci] = c.Base[0];
    }

    private void SplitChunk(int ci)
    {
        var c = _chunks[ci];
        var right = new Chunk();
        var half = c.Count / 2;
        var n = c.Count - half;
        Array.Copy(c.Base, half, right.Base, 0, n);
        Array.Copy(c.End, half, right.End, 0, n);
        Array.Copy(c.Slots, half, right.Slots, 0, n);
        Array.Clear(c.Slots, half, n);
        right.Count = n;
        c.Count = half;
        if (_chunkCount == _chunks.Length)
        {
            Array.Resize(ref _chunks, _chunks.Length * 2);
            Array.Resize(ref _chunkFirst, _chunkFirst.Length * 2);
        }
        Array.Copy(_chunks, ci + 1, _chunks, ci + 2, _chunkCount - ci - 1);
        Array.Copy(_chunkFirst, ci + 1, _chunkFirst, ci + 2, _chunkCount - ci - 1);
        _chunks[ci + 1] = right;
        _chunkFirst[ci + 1] = right.Base[0];
        _chunkCount++;
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
            _lastUsed = null;
        var ci = UpperBound(_chunkFirst, _chunkCount, slot.BaseGfn) - 1;
        var c = _chunks[ci];
        var pos = UpperBound(c.Base, c.Count, slot.BaseGfn) - 1;
        var move = c.Count - pos - 1;
        if (move > 0)
        {
            Array.Copy(c.Base, pos + 1, c.Base, pos, move);
            Array.Copy(c.End, pos + 1, c.End, pos, move);
            Array.Copy(c.Slots, pos + 1, c.Slots, pos, move);
        }
        c.Count--;
        c.Slots[c.Count] = null!;
        if (c.Count == 0)
        {
            Array.Copy(_chunks, ci + 1, _chunks, ci, _chunkCount - ci - 1);
            Array.Copy(_chunkFirst, ci + 1, _chunkFirst, ci, _chunkCount - ci - 1);
            _chunkCount--;
            _chunks[_chunkCount] = null!;
        }
        else
        {
            _chunkFirst[ci] = c.Base[0];
        }
    }

    /// <summary>Replaces a slot by another with the same id and gfn range (FLAGS_ONLY).</summary>
    internal void Replace(Memslot old, Memslot slot)
    {
        var ci = UpperBound(_chunkFirst, _chunkCount, old.BaseGfn) - 1;
        var c = _chunks[ci];
        var pos = UpperBound(c.Base, c.Count, old.BaseGfn) - 1;
        c.Slots[pos] = slot;
        _byId[slot.Id] = slot;
        if (_lastUsed == old)
            _lastUsed = slot;
    }
}
