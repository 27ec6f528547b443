using S2Lab.Kernel.Arm64;
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
                    // arch_calc_vm_flag_bits(): anonymous memory may carry MTE tags when the system supports MTE (rule 6).
                    ArchMman.CalcVmFlagBits(process.Host, MmapSource.Anonymous);
        var align = thp && length >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE;
        return process.Mm.InsertVma(length, flags, PgProt.Default, null, new AnonymousBacking(process.Mm.Memory, thp), name,
            fixedAddress, fixedAddress is null ? align : PAGE_SIZE);
    }
}

/// <summary>
/// The pages behind an anonymous mapping, by page index (vm_pgoff + offset), shared by the VMAs split from it. Kept
/// per 2 MiB window: a window the THP path filled holds just its folio's first pfn; a window of small pages holds a
/// 512-entry array; a window never touched costs nothing.
/// </summary>
internal sealed class AnonymousBacking(PhysicalMemory memory, bool thp) : IVmaBacking, IBulkResidency
{
    private const ulong PagesPerPmd = PMD_SIZE / PAGE_SIZE;

    private sealed class Window
    {
        /// <summary>First pfn + 1 of a 2 MiB folio backing the whole window, or 0.</summary>
        public ulong Folio;

        /// <summary>pfn + 1 of each page (0: none), when the window is not one whole folio.</summary>
        public ulong[]? Pages;

        /// <summary>The host maps the folio with a PMD (until part of it is unmapped).</summary>
        public bool PmdMapped;

        public int Count;

        public ulong Pfn1(ulong i) => Folio != 0 ? Folio + i : Pages is { } p ? p[i] : 0;
    }

    private readonly Dictionary<ulong, Window> _windows = [];

    public string Kind => thp ? "anonymous (THP)" : "anonymous";

    private static ulong Index(Vma vma, ulong hva) => vma.PgOff + ((hva - vma.Start) >> PAGE_SHIFT);

    public HostPte? Lookup(Vma vma, ulong hva)
    {
        var idx = Index(vma, hva);
        if (!_windows.TryGetValue(idx / PagesPerPmd, out var w) || w.Pfn1(idx % PagesPerPmd) is not (> 0 and var pfn1))
            return null;
        // A PMD mapping survives only while one VMA covers the whole 2 MiB window (a VMA split splits the huge PMD).
        var window = AlignDown(hva, PMD_SIZE);
        var pmd = w.PmdMapped && window >= vma.Start && window + PMD_SIZE <= vma.End;
        return new HostPte(pfn1 - 1, pmd ? PMD_SIZE : PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0);
    }

    public HostPte? Fault(Vma vma, ulong hva, bool write)
    {
        if (Lookup(vma, hva) is { } pte)
            return pte;
        var idx = Index(vma, hva);
        var window = AlignDown(hva, PMD_SIZE);
        _windows.TryGetValue(idx / PagesPerPmd, out var w);
        if (thp && (vma.Flags & VmFlags.VM_NOHUGEPAGE) == 0 && window >= vma.Start && window + PMD_SIZE <= vma.End &&
            idx % PagesPerPmd == (hva >> PAGE_SHIFT) % PagesPerPmd && (w is null || w.Count == 0) &&
            memory.AllocFolio(9) is { } folio)
        {
            _windows[idx / PagesPerPmd] = new Window { Folio = folio + 1, PmdMapped = true, Count = (int)PagesPerPmd };
            return Lookup(vma, hva);
        }
        if (memory.AllocFolio(0) is not { } pfn)
            return null;
        if (w is null)
            _windows[idx / PagesPerPmd] = w = new Window();
        w.Pages ??= new ulong[PagesPerPmd];
        w.Pages[idx % PagesPerPmd] = pfn + 1;
        w.Count++;
        return Lookup(vma, hva);
    }

    public void Residency(Vma vma, ulong hva, Span<byte> vec)
    {
        var idx = Index(vma, hva);
        var i = 0;
        while (i < vec.Length)
        {
            var inWindow = (int)Math.Min((ulong)(vec.Length - i), PagesPerPmd - (idx % PagesPerPmd));
            var part = vec.Slice(i, inWindow);
            if (!_windows.TryGetValue(idx / PagesPerPmd, out var w))
                part.Clear();
            else if (w.Folio != 0)
                part.Fill(1);
            else
                for (var j = 0; j < inWindow; j++)
                    part[j] = w.Pages![(idx % PagesPerPmd) + (ulong)j] != 0 ? (byte)1 : (byte)0;
            i += inWindow;
            idx += (ulong)inWindow;
        }
    }

    public void Release(Vma vma, ulong start, ulong end)
    {
        var first = Index(vma, start);
        var count = (end - start) >> PAGE_SHIFT;
        if (count == 0)
            return;
        var last = first + count - 1;
        var span = (last / PagesPerPmd) - (first / PagesPerPmd) + 1;
        IEnumerable<ulong> keys = span <= (ulong)_windows.Count
            ? Enumerable.Range(0, (int)span).Select(i => (first / PagesPerPmd) + (ulong)i).Where(_windows.ContainsKey).ToList()
            : _windows.Keys.Where(k => k >= first / PagesPerPmd && k <= last / PagesPerPmd).ToList();
        foreach (var k in keys)
        {
            var w = _windows[k];
            var lo = Math.Max(first, k * PagesPerPmd) - (k * PagesPerPmd);
            var hi = Math.Min(last, (k * PagesPerPmd) + PagesPerPmd - 1) - (k * PagesPerPmd);
            if (w.Folio != 0 && !(lo == 0 && hi == PagesPerPmd - 1))
            {
                // Part of a THP goes: the folio is split, the rest stays mapped by PTEs.
                w.Pages = new ulong[PagesPerPmd];
                for (ulong i = 0; i < PagesPerPmd; i++)
                    w.Pages[i] = w.Folio + i;
                w.Folio = 0;
            }
            for (var i = lo; i <= hi; i++)
            {
                var pfn1 = w.Pfn1(i);
                if (pfn1 == 0)
                    continue;
                memory.FreePage(pfn1 - 1);
                if (w.Pages is { } p)
                    p[i] = 0;
                w.Count--;
            }
            w.PmdMapped = false;
            if (w.Count == 0 || w.Folio != 0)
                _windows.Remove(k);
        }
    }
}
