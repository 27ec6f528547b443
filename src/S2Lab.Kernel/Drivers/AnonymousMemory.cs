using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>Anonymous memory (mmap MAP_ANONYMOUS): RAM pages allocated on first touch, THP-sized folios when possible.</summary>
public static class AnonymousMemory
{
    /// <summary>
    /// mmap(NULL or <paramref name="fixedAddress"/>, length, prot, MAP_PRIVATE|MAP_ANONYMOUS). Mappings of 2 MiB or
    /// more are 2 MiB aligned (thp_get_unmapped_area). With <paramref name="thp"/>, a fault inside a 2 MiB window the
    /// VMA covers allocates a 2 MiB folio that the host maps with a PMD.
    /// </summary>
    public static KvmResult<Vma> Mmap(Process process, ulong length, Prot prot = Prot.PROT_READ | Prot.PROT_WRITE,
        ulong? fixedAddress = null, bool thp = true, bool shared = false, string name = "anon")
    {
        var flags = VmFlagsExtensions.FromProt(prot) | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE | VmFlags.VM_MAYEXEC |
                    (shared ? VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE : VmFlags.VM_ACCOUNT) |
                    // arch_calc_vm_flag_bits(): anonymous memory may carry MTE tags when the system supports MTE.
                    (process.Host.Cpu.HasMte ? VmFlags.VM_MTE_ALLOWED : VmFlags.VM_NONE);
        var align = thp && length >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE;
        return process.Mm.InsertVma(length, flags, PgProt.Default, null, new AnonymousBacking(process.Mm.Memory, thp), name,
            fixedAddress, fixedAddress is null ? align : PAGE_SIZE);
    }
}

/// <summary>The pages behind an anonymous mapping, by page index (vm_pgoff + offset), shared by the VMAs split from it.</summary>
internal sealed class AnonymousBacking(PhysicalMemory memory, bool thp) : IVmaBacking
{
    private const ulong PagesPerPmd = PMD_SIZE / PAGE_SIZE;
    private readonly Dictionary<ulong, ulong> _pages = [];
    private readonly HashSet<ulong> _pmdMapped = [];

    public string Kind => thp ? "anonymous (THP)" : "anonymous";

    private static ulong Index(Vma vma, ulong hva) => vma.PgOff + ((hva - vma.Start) >> PAGE_SHIFT);

    public HostPte? Lookup(Vma vma, ulong hva)
    {
        var idx = Index(vma, hva);
        if (!_pages.TryGetValue(idx, out var pfn))
            return null;
        // A PMD mapping survives only while one VMA covers the whole 2 MiB window (a VMA split splits the huge PMD).
        var window = AlignDown(hva, PMD_SIZE);
        var pmd = _pmdMapped.Contains(idx / PagesPerPmd) && window >= vma.Start && window + PMD_SIZE <= vma.End;
        return new HostPte(pfn, pmd ? PMD_SIZE : PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0);
    }

    public HostPte? Fault(Vma vma, ulong hva, bool write)
    {
        if (Lookup(vma, hva) is { } pte)
            return pte;
        var idx = Index(vma, hva);
        var window = AlignDown(hva, PMD_SIZE);
        if (thp && (vma.Flags & VmFlags.VM_NOHUGEPAGE) == 0 && window >= vma.Start && window + PMD_SIZE <= vma.End &&
            idx % PagesPerPmd == (hva >> PAGE_SHIFT) % PagesPerPmd && NoPagesIn(idx / PagesPerPmd) &&
            memory.AllocFolio(9) is { } folio)
        {
            var first = idx - (idx % PagesPerPmd);
            for (ulong i = 0; i < PagesPerPmd; i++)
                _pages[first + i] = folio + i;
            _pmdMapped.Add(idx / PagesPerPmd);
            return Lookup(vma, hva);
        }
        if (memory.AllocFolio(0) is not { } pfn)
            return null;
        _pages[idx] = pfn;
        return Lookup(vma, hva);
    }

    private bool NoPagesIn(ulong pmdIndex)
    {
        var first = pmdIndex * PagesPerPmd;
        for (ulong i = 0; i < PagesPerPmd; i++)
            if (_pages.ContainsKey(first + i))
                return false;
        return true;
    }

    public void Release(Vma vma, ulong start, ulong end)
    {
        var first = Index(vma, start);
        var count = (end - start) >> PAGE_SHIFT;
        IEnumerable<ulong> keys = count <= (ulong)_pages.Count
            ? Enumerable.Range(0, (int)count).Select(i => first + (ulong)i).Where(_pages.ContainsKey).ToList()
            : _pages.Keys.Where(k => k >= first && k < first + count).ToList();
        foreach (var k in keys)
        {
            memory.FreePage(_pages[k]);
            _pages.Remove(k);
            _pmdMapped.Remove(k / PagesPerPmd); // a partly unmapped THP is split: the rest is mapped by PTEs
        }
    }
}
