using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Mm;

/// <summary>
/// A vm_area_struct: [Start, End) of a process's address space with its flags, page protection (stage-1 attribute
/// index), vm_pgoff and the driver behind it. Immutable: mprotect/munmap replace VMAs with split copies.
/// </summary>
public sealed record Vma(ulong Start, ulong End, VmFlags Flags, PgProt PageProt, ulong PgOff, IVmaBacking Backing, string Name)
{
    public ulong Size => End - Start;

    public bool Contains(ulong hva) => hva >= Start && hva < End;

    /// <summary>Rule 3: kvm_vma_is_cacheable().</summary>
    public bool IsCacheable => PageProt.IsCacheable;

    /// <summary>
    /// For a VM_PFNMAP VMA mapped linearly from vm_pgoff (remap_pfn_range, the vfio and nvgrace drivers), the
    /// physical address behind <paramref name="hva"/>: vm_pgoff * PAGE_SIZE + (hva - vm_start). KVM no longer sizes
    /// blocks from it (rule 15 takes the host's stage-1 leaf).
    /// </summary>
    public ulong LinearPa(ulong hva) => (PgOff << PAGE_SHIFT) + (hva - Start);

    /// <summary>This VMA cut to [start, end) (a split), with vm_pgoff advanced accordingly.</summary>
    public Vma Slice(ulong start, ulong end) =>
        this with { Start = start, End = end, PgOff = PgOff + ((start - Start) >> PAGE_SHIFT) };

    public override string ToString() =>
        $"{Name} [{Start:x}-{End:x}) {Flags} {PageProt} pgoff={PgOff:x}";
}

/// <summary>A host page-table entry for a user address, as follow_pte()/get_user_pages() report it.</summary>
/// <param name="Pfn">The page frame of the faulting address (not of the block start).</param>
/// <param name="MappingSize">The host mapping level: PAGE_SIZE, PMD_SIZE (THP, hugetlb) or PUD_SIZE.</param>
/// <param name="Writable">The host maps the page writable.</param>
public readonly record struct HostPte(ulong Pfn, ulong MappingSize, bool Writable);

/// <summary>
/// What a driver puts behind a VMA (its vm_operations_struct): resolves a user address to a pfn, faulting pages in,
/// and releases pages when the range is unmapped.
/// </summary>
public interface IVmaBacking
{
    /// <summary>Short description (e.g. "anonymous", "vfio-pci BAR0").</summary>
    string Kind { get; }

    /// <summary>
    /// handle_mm_fault()/follow_pfnmap: the pte for <paramref name="hva"/>, populating it if needed. Permission checks
    /// against the VMA were already done by the caller. Null when the driver cannot provide a page (SIGBUS).
    /// </summary>
    HostPte? Fault(Vma vma, ulong hva, bool write);

    /// <summary>The pte for <paramref name="hva"/> if present, without faulting.</summary>
    HostPte? Lookup(Vma vma, ulong hva);

    /// <summary>The range [start, end) of <paramref name="vma"/> is being unmapped: drop its pages.</summary>
    void Release(Vma vma, ulong start, ulong end);
}

/// <summary>
/// A backing that reports the residency of many pages at once (mincore's fast path), instead of one
/// <see cref="IVmaBacking.Lookup"/> per page.
/// </summary>
internal interface IBulkResidency
{
    /// <summary>For each of the <c>vec.Length</c> pages from <paramref name="hva"/> (all inside <paramref name="vma"/>): 1 if present, else 0.</summary>
    void Residency(Vma vma, ulong hva, Span<byte> vec);
}

/// <summary>
/// A VM_PFNMAP backing whose pfn is vm_pgoff + page index. remap_pfn_range() (/dev/mem, most drivers) maps it with
/// pages. With <paramref name="hugeFaults"/> the driver fills it from a huge_fault handler instead (vfio-pci BARs,
/// nvgrace-gpu in 7.x): a PUD or PMD leaf wherever the aligned block lies inside the VMA and its pfn is aligned
/// (is_aligned_for_order()), else a page.
/// </summary>
public sealed class LinearPfnBacking(string kind, bool hugeFaults = false) : IVmaBacking
{
    public string Kind { get; } = kind;

    /// <summary>The driver inserts PMD/PUD leaves where it can (vfio_pci_mmap_huge_fault).</summary>
    public bool HugeFaults { get; } = hugeFaults;

    public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

    public HostPte? Lookup(Vma vma, ulong hva) =>
        new HostPte(vma.LinearPa(hva) >> PAGE_SHIFT, HugeFaults ? LeafSize(vma, hva) : PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0);

    /// <summary>The largest order is_aligned_for_order() allows at <paramref name="hva"/>: block inside the VMA, pfn aligned.</summary>
    private static ulong LeafSize(Vma vma, ulong hva)
    {
        foreach (var size in (ReadOnlySpan<ulong>)[PUD_SIZE, PMD_SIZE])
        {
            var start = AlignDown(hva, size);
            if (start >= vma.Start && vma.End - start >= size && IsAligned(vma.LinearPa(start), size))
                return size;
        }
        return PAGE_SIZE;
    }

    public void Release(Vma vma, ulong start, ulong end)
    {
    }
}
