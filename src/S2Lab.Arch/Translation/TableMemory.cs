namespace S2Lab.Arch.Translation;

/// <summary>
/// Where stage-2 table pages come from: the model of Linux's <c>struct kvm_pgtable_mm_ops</c> (zalloc_page /
/// zalloc_pages_exact, free_pages_exact, phys_to_virt). Tables hold physical addresses; the walker turns them into
/// descriptor storage with <see cref="PhysToVirt"/>.
/// </summary>
public interface IStage2TableMemory
{
    /// <summary>log2 of the page size this memory hands out (the stage-2 granule).</summary>
    int PageShift { get; }

    /// <summary>
    /// Allocates <paramref name="pages"/> (a power of two, at most 16) physically contiguous zeroed pages, aligned to their
    /// total size (a concatenated start-level table must be aligned to its size). Returns false when out of memory.
    /// </summary>
    bool TryZallocPages(int pages, out ulong pa);

    /// <summary>Returns pages obtained from <see cref="TryZallocPages"/>.</summary>
    void FreePages(ulong pa, int pages);

    /// <summary>The descriptors stored at physical address <paramref name="pa"/> (8 bytes each).</summary>
    Span<ulong> PhysToVirt(ulong pa, int entries);

    /// <summary>Bytes currently allocated.</summary>
    long BytesInUse { get; }
}

/// <summary>
/// Simulated physical memory for table pages: a pooled arena of <c>ulong</c> chunks indexed by physical page number,
/// a bump pointer and a free list. Compact (8 bytes per descriptor, no per-page object) so that tens of millions of
/// descriptors fit in one run.
/// </summary>
public sealed class SimulatedTableMemory : IStage2TableMemory
{
    private const int ChunkBytesShift = 21; // 2 MiB chunks

    private readonly int _pageShift;
    private readonly int _wordsPerPageShift;
    private readonly int _pagesPerChunkShift;
    private readonly long _maxPages;
    private readonly List<ulong[]> _chunks = [];
    private int[] _free = new int[64];
    private int _freeCount;
    private long _nextPage;
    private long _pagesInUse;

    /// <summary>Creates the memory.</summary>
    /// <param name="pageSize">Page (granule) size of the tables.</param>
    /// <param name="basePa">Physical address of page 0; must be aligned to 16 pages.</param>
    /// <param name="maxBytes">Capacity; allocation beyond it fails (-ENOMEM in the table operations).</param>
    public SimulatedTableMemory(Granule pageSize = Granule.Size4K, ulong basePa = 0x8000_0000, long maxBytes = 1L << 40)
    {
        _pageShift = pageSize.Shift();
        _wordsPerPageShift = _pageShift - 3;
        _pagesPerChunkShift = ChunkBytesShift - _pageShift;
        if ((basePa & ((16UL << _pageShift) - 1)) != 0)
        {
            throw new ArgumentException("the base must be aligned to 16 pages", nameof(basePa));
        }

        BasePa = basePa;
        _maxPages = maxBytes >> _pageShift;
    }

    /// <summary>Physical address of the first page.</summary>
    public ulong BasePa { get; }

    public int PageShift => _pageShift;

    public long BytesInUse => _pagesInUse << _pageShift;

    /// <summary>Largest <see cref="BytesInUse"/> seen.</summary>
    public long PeakBytesInUse { get; private set; }

    /// <summary>Bytes of managed storage reserved for the arena (chunks).</summary>
    public long ReservedBytes => (long)_chunks.Count << ChunkBytesShift;

    public bool TryZallocPages(int pages, out ulong pa)
    {
        if (pages < 1 || pages > 16 || (pages & (pages - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pages), pages, "a power of two from 1 to 16");
        }

        pa = 0;
        long page;
        if (pages == 1 && _freeCount > 0)
        {
            page = _free[--_freeCount];
            PhysToVirt(PageToPa(page), 1 << _wordsPerPageShift).Clear();
        }
        else
        {
            long aligned = (_nextPage + pages - 1) & ~(long)(pages - 1);
            if (aligned + pages > _maxPages)
            {
                return false;
            }

            for (long p = _nextPage; p < aligned; p++)
            {
                PushFree(p);
            }

            page = aligned;
            _nextPage = aligned + pages;
            EnsureChunk(_nextPage - 1);
        }

        _pagesInUse += pages;
        PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
        pa = PageToPa(page);
        return true;
    }

    public void FreePages(ulong pa, int pages)
    {
        long page = PaToPage(pa);
        if (page < 0 || page + pages > _nextPage)
        {
            throw new ArgumentException($"0x{pa:x} is not a table page of this memory", nameof(pa));
        }

        for (int i = 0; i < pages; i++)
        {
            PushFree(page + i);
        }

        _pagesInUse -= pages;
    }

    public Span<ulong> PhysToVirt(ulong pa, int entries)
    {
        long page = PaToPage(pa);
        int chunk = (int)(page >> _pagesPerChunkShift);
        int offset = (int)((page & ((1L << _pagesPerChunkShift) - 1)) << _wordsPerPageShift) + (int)((pa >> 3) & ((1UL << _wordsPerPageShift) - 1));
        return new Span<ulong>(_chunks[chunk], offset, entries);
    }

    private ulong PageToPa(long page) => BasePa + ((ulong)page << _pageShift);

    private long PaToPage(ulong pa) => (long)((pa - BasePa) >> _pageShift);

    private void PushFree(long page)
    {
        if (_freeCount == _free.Length)
        {
            Array.Resize(ref _free, _free.Length * 2);
        }

        _free[_freeCount++] = (int)page;
    }

    private void EnsureChunk(long lastPage)
    {
        long needed = (lastPage >> _pagesPerChunkShift) + 1;
        while (_chunks.Count < needed)
        {
            _chunks.Add(new ulong[1 << (ChunkBytesShift - 3)]);
        }
    }
}
