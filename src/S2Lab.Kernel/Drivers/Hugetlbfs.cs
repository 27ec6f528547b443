using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>
/// hugetlbfs (or MAP_HUGETLB): VM_HUGETLB mappings backed by huge pages of RAM. The sizes are arm64's with 4K pages
/// (arch_hugetlb_valid_size): 64 KiB (CONT_PTE), 2 MiB (PMD), 32 MiB (CONT_PMD) and 1 GiB (PUD).
/// </summary>
public static class Hugetlbfs
{
    /// <summary>
    /// mmap of a hugetlbfs file, or with <paramref name="anonymous"/> mmap(MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_*) (what
    /// <c>IHostAddressSpace.MapHugetlb</c> asks for): the length must be a multiple of <paramref name="hugePageSize"/>
    /// (EINVAL otherwise), and the address is aligned to it. A size arm64 has no hstate for fails EINVAL
    /// (ksys_mmap_pgoff: no hstate for the MAP_HUGE_ size). On an MTE host the VMA gets VM_MTE_ALLOWED as the modelled
    /// kernel's arch_calc_vm_flag_bits() gives it (<see cref="ArchMman"/>): an anonymous MAP_HUGETLB mapping always,
    /// a hugetlbfs file from 6.13 (rule 6).
    /// </summary>
    public static KvmResult<Vma> Mmap(Process process, ulong length, ulong hugePageSize = PMD_SIZE,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null, string name = "hugetlb", bool anonymous = false)
    {
        if (!IsValidSize(hugePageSize) || length == 0 || !IsAligned(length, hugePageSize))
            return Errno.EINVAL;
        if (fixedAddress is { } fa && !IsAligned(fa, hugePageSize))
            return Errno.EINVAL;
        var flags = VmFlagsExtensions.FromProt(prot) | VmFlags.VM_HUGETLB | VmFlags.VM_DONTEXPAND | VmFlags.VM_SHARED |
                    VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE | VmFlags.VM_MAYEXEC |
                    ArchMman.CalcVmFlagBits(process.Host, anonymous ? MmapSource.AnonymousHugetlb : MmapSource.HugetlbfsFile);
        return process.Mm.InsertVma(length, flags, PgProt.Default, 0, new HugetlbBacking(process.Mm.Memory, hugePageSize),
            name, fixedAddress, hugePageSize);
    }

    /// <summary>arch_hugetlb_valid_size() on arm64 with 4K pages.</summary>
    public static bool IsValidSize(ulong size) => size is CONT_PTE_SIZE or PMD_SIZE or CONT_PMD_SIZE or PUD_SIZE;
}

/// <summary>Huge pages by huge-page index of the file.</summary>
internal sealed class HugetlbBacking(PhysicalMemory memory, ulong hugePageSize) : IVmaBacking
{
    private readonly Dictionary<ulong, ulong> _huge = [];
    private readonly ulong _pagesPerHuge = hugePageSize / PAGE_SIZE;
    private readonly int _order = System.Numerics.BitOperations.Log2(hugePageSize / PAGE_SIZE);

    public string Kind => $"hugetlbfs {Format(hugePageSize)}";

    public ulong HugePageSize => hugePageSize;

    private ulong Index(Vma vma, ulong hva) => vma.PgOff + ((hva - vma.Start) >> PAGE_SHIFT);

    public HostPte? Lookup(Vma vma, ulong hva)
    {
        var idx = Index(vma, hva);
        return _huge.TryGetValue(idx / _pagesPerHuge, out var pfn)
            ? new HostPte(pfn + idx % _pagesPerHuge, hugePageSize, (vma.Flags & VmFlags.VM_WRITE) != 0)
            : null;
    }

    public HostPte? Fault(Vma vma, ulong hva, bool write)
    {
        if (Lookup(vma, hva) is { } pte)
            return pte;
        if (memory.AllocFolio(_order) is not { } folio)
            return null;
        _huge[Index(vma, hva) / _pagesPerHuge] = folio;
        return Lookup(vma, hva);
    }

    public void Release(Vma vma, ulong start, ulong end)
    {
        var first = Index(vma, start) / _pagesPerHuge;
        var last = (Index(vma, end - 1)) / _pagesPerHuge;
        foreach (var k in _huge.Keys.Where(k => k >= first && k <= last).ToList())
        {
            memory.FreeFolio(_huge[k], _order);
            _huge.Remove(k);
        }
    }
}
