using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// The memslots of one address space: a sorted, non-overlapping collection indexed by gfn and by id.
/// <para>
/// The gfn index is a two-level B+-tree: up to <see cref="ChunkCapacity"/> slots per leaf chunk, chunk keys in one
/// sorted array, each level with a one-line summary (every 32nd chunk key, every 16th base in a chunk). A lookup counts
/// keys &lt;= gfn over the summaries and one group per level: independent loads of a few adjacent cache lines instead
/// of a chain of dependent binary-search probes. An insert or delete shifts at most one chunk (and, on a split or an
/// emptied chunk, the chunk-key array), so no update copies the whole collection. The last slot found is cached
/// (the kernel's last_used_slot).
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

    private struct Entry
    {
        public ulong End;
        public Memslot Slot;
    }

    private const int Stride = 16;

    private sealed class Chunk
    {
        public readonly ulong[] Base = new ulong[ChunkCapacity];
        public readonly Entry[] Entries = new Entry[ChunkCapacity]; // End and slot side by side: one cache line on a hit

        /// <summary>Base[k * 16] for each group of 16 (unused groups hold ulong.MaxValue): one cache line to pick the group.</summary>
        public readonly ulong[] Summary = new ulong[ChunkCapacity / Stride];
        public int Count;

        public void Resummarize()
        {
            for (var k = 0; k < Summary.Length; k++)
                Summary[k] = k * Stride < Count ? Base[k * Stride] : ulong.MaxValue;
        }
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
        var ci = FindChunk(gfn);
        if (ci < 0)
            return null;
        var c = _chunks[ci];
        // Pick the group of 16 from the summary line, then count within the group (two adjacent lines).
        ref var sum = ref MemoryMarshal.GetArrayDataReference(c.Summary);
        var groups = 0;
        for (var k = 0; k < ChunkCapacity / Stride; k++)
            groups += Unsafe.Add(ref sum, k) <= gfn ? 1 : 0;
        if (groups == 0)
            return null;
        var lo = (groups - 1) * Stride;
        var hi = Math.Min(lo + Stride, c.Count);
        ref var bases = ref MemoryMarshal.GetArrayDataReference(c.Base);
        var i = lo - 1;
        for (var j = lo; j < hi; j++)
            i += Unsafe.Add(ref bases, j) <= gfn ? 1 : 0;
        ref var e = ref c.Entries[i];
        return gfn < e.End ? e.Slot : null;
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
            if (c.Entries[i].End <= start)
                return false;
            if (c.Entries[i].Slot.Id != exceptId)
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
                yield return c.Entries[i].Slot;
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
            Array.Copy(c.Entries, pos, c.Entries, pos + 1, move);
        }
        c.Base[pos] = slot.BaseGfn;
        c.Entries[pos] = new Entry { End = slot.EndGfn, Slot = slot };
        c.Count++;
        c.Resummarize();
        _chunkFirst[ci] = c.Base[0];
        RebuildTopSummary();
    }

    private const int TopStride = 32;
    private ulong[] _topSummary = [];

    /// <summary>_chunkFirst[k * 32] for each group of 32 chunks: lookups count over it instead of a dependent binary search.</summary>
    private void RebuildTopSummary()
    {
        var groups = (_chunkCount + TopStride - 1) / TopStride;
        if (_topSummary.Length < groups)
            _topSummary = new ulong[Math.Max(groups, _topSummary.Length * 2)];
        for (var k = 0; k < _topSummary.Length; k++)
            _topSummary[k] = k < groups ? _chunkFirst[k * TopStride] : ulong.MaxValue;
    }

    /// <summary>The chunk that may hold <paramref name="gfn"/>: counts over the top summary, then over one group of 32 chunk keys.</summary>
    private int FindChunk(ulong gfn)
    {
        var top = _topSummary;
        var groups = 0;
        for (var k = 0; k < top.Length; k++)
            groups += top[k] <= gfn ? 1 : 0;
        if (groups == 0)
            return -1;
        var lo = (groups - 1) * TopStride;
        var hi = Math.Min(lo + TopStride, _chunkCount);
        ref var first = ref MemoryMarshal.GetArrayDataReference(_chunkFirst);
        var ci = lo - 1;
        for (var j = lo; j < hi; j++)
            ci += Unsafe.Add(ref first, j) <= gfn ? 1 : 0;
        return ci;
    }

    private void SplitChunk(int ci)
    {
        var c = _chunks[ci];
        var right = new Chunk();
        var half = c.Count / 2;
        var n = c.Count - half;
        Array.Copy(c.Base, half, right.Base, 0, n);
        Array.Copy(c.Entries, half, right.Entries, 0, n);
        Array.Clear(c.Entries, half, n);
        right.Count = n;
        c.Count = half;
        right.Resummarize();
        c.Resummarize();
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
            Array.Copy(c.Entries, pos + 1, c.Entries, pos, move);
        }
        c.Count--;
        c.Entries[c.Count] = default;
        c.Resummarize();
        if (c.Count == 0)
        {
            Array.Copy(_chunks, ci + 1, _chunks, ci, _chunkCount - ci - 1);
            Array.Copy(_chunkFirst, ci + 1, _chunkFirst, ci, _chunkCount - ci - 1);
            _chunkCount--;
            RebuildTopSummary();
            _chunks[_chunkCount] = null!;
        }
        else
        {
            _chunkFirst[ci] = c.Base[0];
            RebuildTopSummary();
        }
    }

    /// <summary>Replaces a slot by another with the same id and gfn range (FLAGS_ONLY).</summary>
    internal void Replace(Memslot old, Memslot slot)
    {
        var ci = UpperBound(_chunkFirst, _chunkCount, old.BaseGfn) - 1;
        var c = _chunks[ci];
        var pos = UpperBound(c.Base, c.Count, old.BaseGfn) - 1;
        c.Entries[pos].Slot = slot;
        _byId[slot.Id] = slot;
        if (_lastUsed == old)
            _lastUsed = slot;
    }
}
