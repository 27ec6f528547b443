using System.Numerics;
using System.Runtime.CompilerServices;

namespace S2Lab.Kernel.Mm;

/// <summary>
/// Sparse contents of a physical address space, stored by 64-byte cache line: a line that was never written, or that
/// holds only zeros, is absent and reads as zero. Two open-addressing tables (linear probing, backward-shift deletion)
/// index it: line number to a slot of a chunked line pool, and pfn to the mask of the page's present lines. Memory is
/// proportional to the lines holding data (about 100 bytes per line), not to page size, and there is no heap object
/// per page or per line.
/// </summary>
internal sealed class LineStore
{
    public const int LineShift = 6;
    public const int LineSize = 1 << LineShift;
    private const int LinesPerPage = 1 << (PageSizes.PAGE_SHIFT - LineShift);
    private const int ChunkShift = 10; // 1024 lines (64 KiB) per pool chunk
    private const int ChunkLines = 1 << ChunkShift;

    // Line index: key = line number + 1 (0 = empty), value = pool slot.
    private ulong[] _lineKeys = new ulong[16];
    private int[] _lineSlots = new int[16];
    private int _lines;

    // Page index: key = pfn + 1 (0 = empty), value = bit i set when line i of the page is present.
    private ulong[] _pageKeys = new ulong[16];
    private ulong[] _pageMasks = new ulong[16];
    private int _pages;

    private readonly List<byte[]> _chunks = [];
    private int[] _freeSlots = new int[16];
    private int _freeCount;
    private int _nextSlot;

    /// <summary>Pages holding at least one non-zero line.</summary>
    public int PageCount => _pages;

    /// <summary>Lines holding data.</summary>
    public int LineCount => _lines;

    /// <summary>Bytes held by the tables and the line pool (for benchmarks and reports).</summary>
    public long FootprintBytes =>
        (_lineKeys.Length * 12L) + (_pageKeys.Length * 16L) + ((long)_chunks.Count * ChunkLines * LineSize) + (_freeSlots.Length * 4L);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash(ulong key, int mask) => (int)((key * 0x9E37_79B9_7F4A_7C15UL) >> 32) & mask;

    private static int FindIndex(ulong[] keys, ulong key)
    {
        var mask = keys.Length - 1;
        for (var i = Hash(key, mask); ; i = (i + 1) & mask)
        {
            var k = keys[i];
            if (k == key)
                return i;
            if (k == 0)
                return ~i;
        }
    }

    /// <summary>The mask of present lines of page <paramref name="pfn"/> (0: the page reads as zeros).</summary>
    public ulong PageMask(ulong pfn)
    {
        // A cache's write-backs come a line at a time, mostly several from one page: the last page's slot is kept
        // until the page index changes shape (an insert, a delete or a grow), and its mask read fresh each time.
        var key = pfn + 1;
        if (key != _memoKey)
        {
            _memoIndex = FindIndex(_pageKeys, key);
            _memoKey = key;
        }
        return _memoIndex >= 0 ? _pageMasks[_memoIndex] : 0;
    }

    // PageMask's memo: the key (pfn + 1; 0 = none) and its FindIndex answer in _pageKeys.
    private ulong _memoKey;
    private int _memoIndex;

    private Span<byte> Line(int slot) => _chunks[slot >> ChunkShift].AsSpan((slot & (ChunkLines - 1)) << LineShift, LineSize);

    /// <summary>Copies [<paramref name="offset"/>, +destination.Length) of line <paramref name="line"/> (zeros when absent).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ReadLine(ulong line, int offset, Span<byte> destination)
    {
        if (_lines != 0)
        {
            var i = FindIndex(_lineKeys, line + 1);
            if (i >= 0)
            {
                Line(_lineSlots[i]).Slice(offset, destination.Length).CopyTo(destination);
                return;
            }
        }
        destination.Clear();
    }

    /// <summary>Reads any range starting at byte address <paramref name="address"/>.</summary>
    public void Read(ulong address, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var pfn = address >> PageSizes.PAGE_SHIFT;
            var pageOff = (int)(address & (PageSizes.PAGE_SIZE - 1));
            var n = Math.Min(destination.Length, (int)PageSizes.PAGE_SIZE - pageOff);
            var mask = _pages == 0 ? 0 : PageMask(pfn);
            if (mask == 0)
            {
                destination[..n].Clear();
            }
            else
            {
                var chunk = destination[..n];
                var a = address;
                while (!chunk.IsEmpty)
                {
                    var lineOff = (int)(a & (LineSize - 1));
                    var m = Math.Min(chunk.Length, LineSize - lineOff);
                    var bit = (int)((a >> LineShift) & (LinesPerPage - 1));
                    if ((mask & (1UL << bit)) != 0)
                        ReadLine(a >> LineShift, lineOff, chunk[..m]);
                    else
                        chunk[..m].Clear();
                    chunk = chunk[m..];
                    a += (ulong)m;
                }
            }
            destination = destination[n..];
            address += (ulong)n;
        }
    }

    /// <summary>Writes any range starting at byte address <paramref name="address"/>; all-zero lines end up absent.</summary>
    public void Write(ulong address, ReadOnlySpan<byte> source)
    {
        // The page's mask is looked up once per page: a line it does not have needs no probe of the line table, and
        // zeros written there need nothing at all (a page of zeros written over nothing costs one probe).
        var maskPfn = ulong.MaxValue;
        ulong mask = 0;
        while (!source.IsEmpty)
        {
            var pfn = address >> PageSizes.PAGE_SHIFT;
            if (pfn != maskPfn)
            {
                maskPfn = pfn;
                mask = _pages == 0 ? 0 : PageMask(pfn);
            }
            var lineOff = (int)(address & (LineSize - 1));
            var m = Math.Min(source.Length, LineSize - lineOff);
            var line = address >> LineShift;
            var present = (mask & (1UL << (int)(line & (LinesPerPage - 1)))) != 0;
            if (present || source[..m].IndexOfAnyExcept((byte)0) >= 0)
            {
                var bit = 1UL << (int)(line & (LinesPerPage - 1));
                mask = WriteLine(line, lineOff, source[..m], present) ? mask | bit : mask & ~bit;
            }
            source = source[m..];
            address += (ulong)m;
        }
    }

    /// <summary>Writes within one line; returns whether the line is present afterwards.</summary>
    private bool WriteLine(ulong line, int offset, ReadOnlySpan<byte> data, bool present)
    {
        var zero = data.IndexOfAnyExcept((byte)0) < 0;
        var i = !present ? -1 : FindIndex(_lineKeys, line + 1);
        if (i >= 0)
        {
            var slot = _lineSlots[i];
            var span = Line(slot);
            data.CopyTo(span[offset..]);
            if (!zero || span.IndexOfAnyExcept((byte)0) >= 0)
                return true;
            RemoveLine(line, i, slot);
            return false;
        }
        if (zero)
            return false; // absent already reads as zero
        var s = AllocSlot();
        var dst = Line(s);
        dst.Clear();
        data.CopyTo(dst[offset..]);
        InsertLine(line + 1, s);
        SetPageBit(line);
        return true;
    }

    private int AllocSlot()
    {
        if (_freeCount > 0)
            return _freeSlots[--_freeCount];
        if (_nextSlot == _chunks.Count * ChunkLines)
            _chunks.Add(new byte[ChunkLines * LineSize]);
        return _nextSlot++;
    }

    private void FreeSlot(int slot)
    {
        if (_freeCount == _freeSlots.Length)
            Array.Resize(ref _freeSlots, _freeSlots.Length * 2);
        _freeSlots[_freeCount++] = slot;
    }

    private void InsertLine(ulong key, int slot)
    {
        if ((_lines + 1) * 10 > _lineKeys.Length * 7)
            GrowLines();
        var i = ~FindIndex(_lineKeys, key);
        _lineKeys[i] = key;
        _lineSlots[i] = slot;
        _lines++;
    }

    private void GrowLines()
    {
        var oldKeys = _lineKeys;
        var oldSlots = _lineSlots;
        _lineKeys = new ulong[oldKeys.Length * 2];
        _lineSlots = new int[oldKeys.Length * 2];
        for (var j = 0; j < oldKeys.Length; j++)
        {
            if (oldKeys[j] == 0)
                continue;
            var i = ~FindIndex(_lineKeys, oldKeys[j]);
            _lineKeys[i] = oldKeys[j];
            _lineSlots[i] = oldSlots[j];
        }
    }

    private void SetPageBit(ulong line)
    {
        _memoKey = 0;
        var key = (line >> (PageSizes.PAGE_SHIFT - LineShift)) + 1;
        var bit = 1UL << (int)(line & (LinesPerPage - 1));
        var i = FindIndex(_pageKeys, key);
        if (i >= 0)
        {
            _pageMasks[i] |= bit;
            return;
        }
        if ((_pages + 1) * 10 > _pageKeys.Length * 7)
        {
            var oldKeys = _pageKeys;
            var oldMasks = _pageMasks;
            _pageKeys = new ulong[oldKeys.Length * 2];
            _pageMasks = new ulong[oldKeys.Length * 2];
            for (var j = 0; j < oldKeys.Length; j++)
            {
                if (oldKeys[j] == 0)
                    continue;
                var k = ~FindIndex(_pageKeys, oldKeys[j]);
                _pageKeys[k] = oldKeys[j];
                _pageMasks[k] = oldMasks[j];
            }
            i = FindIndex(_pageKeys, key);
        }
        i = ~i;
        _pageKeys[i] = key;
        _pageMasks[i] = bit;
        _pages++;
    }

    private void RemoveLine(ulong line, int index, int slot)
    {
        DeleteAt(_lineKeys, _lineSlots, index);
        _lines--;
        FreeSlot(slot);
        var pi = FindIndex(_pageKeys, (line >> (PageSizes.PAGE_SHIFT - LineShift)) + 1);
        if (pi < 0)
            return;
        _pageMasks[pi] &= ~(1UL << (int)(line & (LinesPerPage - 1)));
        if (_pageMasks[pi] == 0)
        {
            _memoKey = 0;
            DeleteAt(_pageKeys, _pageMasks, pi);
            _pages--;
        }
    }

    /// <summary>Drops every line of page <paramref name="pfn"/> (it reads as zeros afterwards).</summary>
    public void ClearPage(ulong pfn)
    {
        if (_pages == 0)
            return;
        var pi = FindIndex(_pageKeys, pfn + 1);
        if (pi < 0)
            return;
        var mask = _pageMasks[pi];
        _memoKey = 0;
        DeleteAt(_pageKeys, _pageMasks, pi);
        _pages--;
        var first = pfn << (PageSizes.PAGE_SHIFT - LineShift);
        while (mask != 0)
        {
            var b = BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
            var i = FindIndex(_lineKeys, first + (ulong)b + 1);
            if (i < 0)
                continue;
            FreeSlot(_lineSlots[i]);
            DeleteAt(_lineKeys, _lineSlots, i);
            _lines--;
        }
    }

    /// <summary>Linear-probing deletion by backward shift: later entries of the cluster move into the hole.</summary>
    private static void DeleteAt<T>(ulong[] keys, T[] values, int hole)
    {
        var mask = keys.Length - 1;
        var j = hole;
        while (true)
        {
            j = (j + 1) & mask;
            var k = keys[j];
            if (k == 0)
                break;
            var home = Hash(k, mask);
            // Move k into the hole unless its home lies cyclically in (hole, j].
            var inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (inRange)
                continue;
            keys[hole] = k;
            values[hole] = values[j];
            hole = j;
        }
        keys[hole] = 0;
        values[hole] = default!;
    }

    /// <summary>Whether page <paramref name="pfn"/> holds a non-zero byte.</summary>
    public bool HasData(ulong pfn) => _pages != 0 && FindIndex(_pageKeys, pfn + 1) >= 0;

    /// <summary>The pfns in [<paramref name="first"/>, <paramref name="last"/>] holding data, ascending.</summary>
    public List<ulong> PagesIn(ulong first, ulong last)
    {
        var result = new List<ulong>();
        if (_pages == 0)
            return result;
        if (last - first < (ulong)_pageKeys.Length)
        {
            for (var pfn = first; ; pfn++)
            {
                if (FindIndex(_pageKeys, pfn + 1) >= 0)
                    result.Add(pfn);
                if (pfn == last)
                    break;
            }
            return result;
        }
        foreach (var k in _pageKeys)
        {
            if (k != 0 && k - 1 >= first && k - 1 <= last)
                result.Add(k - 1);
        }
        result.Sort();
        return result;
    }
}
