using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>hugetlbfs (or MAP_HUGETLB): VM_HUGETLB mappings backed by 2 MiB or 1 GiB huge pages of RAM.</summary>
public static class Hugetlbfs
{
    /// <summary>
    /// mmap of a hugetlbfs file: the length must be a multiple of <paramref name="hugePageSize"/> (EINVAL otherwise),
    /// and the address is aligned to it.
    /// </summary>
    public static KvmResult<Vma> Mmap(Process process, ulong length, ulong hugePageSize = PMD_SIZE,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null, string name = "hugetlb")
    {
        if (hugePageSize is not (PMD_SIZE or PUD_SIZE) || length == 0 || !IsAligned(length, hugePageSize))
            return Errno.EINVAL;
        if (fixedAddress is { } fa && !IsAligned(fa, hugePageSize))
            return Errno.EINVAL;
        var flags = VmFlagsExtensions.FromProt(prot) | VmFlags.VM_HUGETLB | VmFlags.VM_DONTEXPAND | VmFlags.VM_SHARED |
                    VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE | VmFlags.VM_MAYEXEC;
        return process.Mm.InsertVma(length, flags, PgProt.Default, 0, new HugetlbBacking(process.Mm.Memory, hugePageSize),
            name, fixedAddress, hugePageSize);
    }
}

/// <summary>Huge pages by huge-page index of the file.</summary>
internal sealed class HugetlbBacking(PhysicalMemory memory, ulong hugePageSize) : IVmaBacking
{
    private readonly Dictionary<ulong, ulong> _huge = [];
    private readonly ulong _pagesPerHuge = hugePageSize / PAGE_SIZE;

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
        var order = hugePageSize == PUD_SIZE ? 18 : 9;
        if (memory.AllocFolio(order) is not { } folio)
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
            memory.FreeFolio(_huge[k], hugePageSize == PUD_SIZE ? 18 : 9);
            _huge.Remove(k);
        }
    }
}
