using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Mm;

/// <summary>What a range of host physical addresses is.</summary>
public enum PhysRegionKind
{
    /// <summary>"System RAM": in the kernel's linear map, has struct page, pfn_is_map_memory() is true.</summary>
    SystemRam,

    /// <summary>Memory outside the linear map (e.g. GPU HBM reached over NVLink-C2C): no struct page, no kernel VA.</summary>
    DeviceMemory,

    /// <summary>Device registers (PCI BARs).</summary>
    Mmio,
}

/// <summary>One range of the host physical memory map.</summary>
/// <param name="HasStructPage">
/// Device memory with struct pages (ZONE_DEVICE, e.g. DAX): outside the linear map, yet get_user_pages() can take its
/// pages. System RAM always has them; other device memory and MMIO do not.
/// </param>
public sealed record PhysRegion(string Name, ulong Base, ulong Size, PhysRegionKind Kind, bool HasStructPage = false)
{
    public ulong End => Base + Size;

    public bool Contains(ulong pa) => pa >= Base && pa - Base < Size;

    /// <summary>True for System RAM: the kernel's linear map covers it (memblock "map memory").</summary>
    public bool IsMapMemory => Kind == PhysRegionKind.SystemRam;

    public override string ToString() => $"{Name} [{Base:x}-{End:x}) {Kind}";
}

/// <summary>
/// The host physical address space: the memory map (System RAM and device ranges), a page-frame allocator for
/// RAM, and the contents of memory (<see cref="LineStore"/>: sparse by 64-byte line; unwritten or zeroed bytes read
/// as zero and cost nothing).
/// The contents are the point of coherency (<see cref="IPointOfCoherence"/>, line-granular). When a <see cref="Host"/>
/// owns the memory, its <see cref="CacheSystem"/> sits in front: <c>Read</c> and <c>Write</c> are then a
/// host CPU's accesses through the linear map (Normal Write-Back), and <see cref="ReadPoc"/>/<see cref="WritePoc"/>
/// reach the PoC itself, as a non-coherent device does.
/// </summary>
public sealed class PhysicalMemory : IPointOfCoherence
{
    /// <summary>The attributes of the host's linear map (MT_NORMAL: Normal iWB oWB RWA).</summary>
    private static readonly MemoryAttributes LinearMap = MemoryAttributes.NormalWriteBack;

    /// <summary>The host CPU the kernel's and the VMM's accesses run on (one shared data cache: the index only picks an I-cache).</summary>
    public static readonly Accessor HostCpu = Accessor.Cpu(0);

    /// <summary>Where <see cref="AddDeviceRegion"/> places device memory when no address is given (the GH200 HBM base).</summary>
    public const ulong DefaultDeviceMemoryBase = 0x4000_0000_0000;

    /// <summary>Where <see cref="AddDeviceRegion"/> places MMIO BARs when no address is given.</summary>
    public const ulong DefaultMmioBase = 0x6000_0000_0000;

    private readonly List<PhysRegion> _regions = [];
    private readonly LineStore _data = new();
    private readonly Dictionary<int, Stack<ulong>> _free = [];
    private readonly PhysRegion _ram;
    private ulong _ramNext;
    private ulong _nextDevice = DefaultDeviceMemoryBase;
    private ulong _nextMmio = DefaultMmioBase;

    /// <summary>A host with <paramref name="ramSize"/> bytes of System RAM at <paramref name="ramBase"/>.</summary>
    public PhysicalMemory(ulong ramBase = 0x8000_0000, ulong ramSize = 16UL << 30)
    {
        if (!IsAligned(ramBase, PUD_SIZE) || ramSize == 0 || !IsAligned(ramSize, PMD_SIZE))
            throw new ArgumentException("System RAM must start 1 GiB aligned and be a non-zero multiple of 2 MiB");
        _ram = new PhysRegion("System RAM", ramBase, ramSize, PhysRegionKind.SystemRam);
        _regions.Add(_ram);
        _ramNext = ramBase;
    }

    /// <summary>The caches in front of this memory (set by the <see cref="Host"/> that owns it); null: no cache.</summary>
    public CacheSystem? Caches { get; internal set; }

    /// <summary>The memory map, sorted by address.</summary>
    public IReadOnlyList<PhysRegion> Regions => _regions;

    /// <summary>The System RAM region.</summary>
    public PhysRegion Ram => _ram;

    /// <summary>RAM pages currently allocated.</summary>
    public ulong AllocatedRamPages { get; private set; }

    /// <summary>The region containing <paramref name="pa"/>, or null for a hole.</summary>
    public PhysRegion? RegionOf(ulong pa)
    {
        if (_ram.Contains(pa))
            return _ram;
        foreach (var r in _regions)
            if (r.Contains(pa))
                return r;
        return null;
    }

    /// <summary>pfn_is_map_memory(): the pfn is System RAM in the kernel's linear map (it has a kernel VA).</summary>
    public bool PfnIsMapMemory(ulong pfn)
    {
        var pa = pfn << PAGE_SHIFT;
        return _ram.Contains(pa);
    }

    /// <summary>The page has a struct page (System RAM, or a ZONE_DEVICE region), so get_user_pages() can pin it.</summary>
    public bool PfnHasStructPage(ulong pfn) =>
        PfnIsMapMemory(pfn) || RegionOf(pfn << PAGE_SHIFT) is { HasStructPage: true };

    /// <summary>
    /// Adds a device memory or MMIO range (done by drivers at probe). Without <paramref name="baseAddress"/> it is
    /// placed after the previous one of its kind, aligned to <paramref name="alignment"/>.
    /// </summary>
    public PhysRegion AddDeviceRegion(string name, ulong size, PhysRegionKind kind, ulong? baseAddress = null, ulong alignment = PUD_SIZE,
        bool hasStructPage = false)
    {
        if (kind == PhysRegionKind.SystemRam)
            throw new ArgumentException("System RAM is fixed when the host is built", nameof(kind));
        if (size == 0 || !IsAligned(size, PAGE_SIZE))
            throw new ArgumentException($"region {name}: size must be a non-zero multiple of 4 KiB", nameof(size));
        ulong b;
        if (baseAddress is { } given)
        {
            b = given;
        }
        else
        {
            ref var next = ref kind == PhysRegionKind.Mmio ? ref _nextMmio : ref _nextDevice;
            b = AlignUp(next, alignment);
            next = b + size;
        }
        if (!IsAligned(b, PAGE_SIZE))
            throw new ArgumentException($"region {name}: base {b:x} is not page aligned");
        var region = new PhysRegion(name, b, size, kind, hasStructPage);
        foreach (var r in _regions)
            if (b < r.End && r.Base < region.End)
                throw new ArgumentException($"region {region} overlaps {r}");
        _regions.Add(region);
        _regions.Sort((x, y) => x.Base.CompareTo(y.Base));
        return region;
    }

    /// <summary>Allocates a naturally aligned folio of 2^order RAM pages; null when RAM is exhausted.</summary>
    public ulong? AllocFolio(int order)
    {
        if (_free.TryGetValue(order, out var stack) && stack.Count > 0)
        {
            AllocatedRamPages += 1UL << order;
            return stack.Pop();
        }
        var size = PAGE_SIZE << order;
        var pa = AlignUp(_ramNext, size);
        if (pa + size > _ram.End || pa + size < pa)
            return null;
        // Pages skipped for alignment go to the order-0 free list.
        for (var skipped = _ramNext; skipped < pa; skipped += PAGE_SIZE)
            FreeList(0).Push(skipped >> PAGE_SHIFT);
        _ramNext = pa + size;
        AllocatedRamPages += 1UL << order;
        return pa >> PAGE_SHIFT;
    }

    /// <summary>Frees one RAM page (a folio is freed page by page once it has been split); its contents are zeroed.</summary>
    public void FreePage(ulong pfn)
    {
        DropCachedLines(pfn << PAGE_SHIFT, PAGE_SIZE);
        _data.ClearPage(pfn);
        FreeList(0).Push(pfn);
        AllocatedRamPages--;
    }

    /// <summary>Frees a whole folio allocated with <see cref="AllocFolio"/>; its contents are zeroed.</summary>
    public void FreeFolio(ulong pfn, int order)
    {
        DropCachedLines(pfn << PAGE_SHIFT, PAGE_SIZE << order);
        for (ulong i = 0; i < 1UL << order; i++)
            _data.ClearPage(pfn + i);
        FreeList(order).Push(pfn);
        AllocatedRamPages -= 1UL << order;
    }

    /// <summary>
    /// A freed page reads as zeros for its next owner (Linux zeroes pages through the linear map before reuse). The
    /// model zeroes the PoC and drops the cache's lines of the page, which is that zeroing once it is written back.
    /// A stale copy a non-cacheable reader could see is made explicitly (<see cref="WritePoc"/>), not by freeing.
    /// </summary>
    private void DropCachedLines(ulong pa, ulong size)
    {
        if (Caches is { DataLinesHeld: > 0 } c)
            c.Maintain(CacheOp.DcIvac, pa, size);
    }

    private Stack<ulong> FreeList(int order)
    {
        if (!_free.TryGetValue(order, out var s))
            _free[order] = s = new Stack<ulong>();
        return s;
    }

    /// <summary>
    /// A host CPU read through the linear map (Normal WB, through <see cref="Caches"/>): the coherent contents. Any
    /// range; never-written bytes read as zero.
    /// </summary>
    public void Read(ulong pa, Span<byte> destination)
    {
        if (Caches is { } c)
            c.Read(HostCpu, pa, LinearMap, destination);
        else
            _data.Read(pa, destination);
    }

    /// <summary>A host CPU write through the linear map (Normal WB, through <see cref="Caches"/>): the line becomes dirty.</summary>
    public void Write(ulong pa, ReadOnlySpan<byte> source)
    {
        if (Caches is { } c)
            c.Write(HostCpu, pa, LinearMap, source);
        else
            _data.Write(pa, source);
    }

    /// <summary>A host CPU read through a mapping with <paramref name="attributes"/> (a user VMA's pgprot).</summary>
    public void Read(ulong pa, Span<byte> destination, in MemoryAttributes attributes)
    {
        if (Caches is { } c)
            c.Read(HostCpu, pa, attributes, destination);
        else
            _data.Read(pa, destination);
    }

    /// <summary>A host CPU write through a mapping with <paramref name="attributes"/> (a user VMA's pgprot).</summary>
    public void Write(ulong pa, ReadOnlySpan<byte> source, in MemoryAttributes attributes)
    {
        if (Caches is { } c)
            c.Write(HostCpu, pa, attributes, source);
        else
            _data.Write(pa, source);
    }

    /// <summary>Reads the point of coherency itself (what a Non-cacheable or non-coherent reader sees).</summary>
    public void ReadPoc(ulong pa, Span<byte> destination) => _data.Read(pa, destination);

    /// <summary>Writes the point of coherency itself, around every cache (a non-coherent device's DMA).</summary>
    public void WritePoc(ulong pa, ReadOnlySpan<byte> source) => _data.Write(pa, source);

    void IPointOfCoherence.ReadLine(ulong linePa, Span<byte> line) => _data.ReadLine(linePa >> LineStore.LineShift, 0, line);

    void IPointOfCoherence.WriteLine(ulong linePa, ReadOnlySpan<byte> line) => _data.Write(linePa, line);

    void IPointOfCoherence.ReadLines(ulong linePa, Span<byte> lines) => _data.Read(linePa, lines);

    /// <summary>Number of pages that hold non-zero data at the PoC.</summary>
    public int PagesWithData => _data.PageCount;

    /// <summary>Bytes the model uses to hold memory contents (tables and line pool).</summary>
    public long ContentBytes => _data.FootprintBytes;

    /// <summary>
    /// Whether the page <paramref name="pfn"/> may hold non-zero data: at the PoC, or in a line the cache holds (else it
    /// reads as zeros). A page whose non-zero PoC bytes a cached line of zeros hides still counts: reading it is exact.
    /// </summary>
    public bool HasData(ulong pfn) => _data.HasData(pfn) || (Caches is { DataLinesHeld: > 0 } c && c.HoldsNonZeroLineIn(pfn << PAGE_SHIFT, PAGE_SIZE));

    /// <summary>
    /// The pfns of [<paramref name="pa"/>, <paramref name="pa"/> + <paramref name="length"/>) whose page holds non-zero
    /// data, ascending; every other page of the range reads as zeros. Costs the smaller of the range's page count and
    /// the number of pages with data, so a large, mostly unwritten device range is cheap to scan.
    /// </summary>
    public List<ulong> PagesWithDataIn(ulong pa, ulong length)
    {
        if (length == 0)
            return [];
        var first = pa >> PAGE_SHIFT;
        var last = (pa + length - 1) >> PAGE_SHIFT; // a physical range: no wrap
        var pages = _data.PagesIn(first, last);
        if (Caches is not { DataLinesHeld: > 0 })
            return pages;
        // The cache holds a bounded number of lines (16,384 by default): the pages of its non-zero lines in the range.
        var lines = new List<ulong>();
        Caches.CollectNonZeroLines(lines);
        var cached = lines.Select(l => l >> PAGE_SHIFT).Where(p => p >= first && p <= last).Distinct().ToList();
        if (cached.Count == 0)
            return pages;
        return [.. pages.Union(cached).Order()];
    }
}
