using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>
/// A PCI device bound to vfio-pci. Its memory BARs are MMIO ranges of the host; mmap of a BAR gives a
/// VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP|VM_ALLOW_ANY_UNCACHED VMA with pgprot_noncached (MT_DEVICE_nGnRE) and
/// vm_pgoff set to the BAR's pfn (vfio_pci_core_mmap).
/// </summary>
public sealed class VfioPciDevice
{
    private readonly List<PhysRegion> _bars = [];
    private readonly Dictionary<int, PhysRegion> _byIndex = [];

    /// <param name="host">The host the device sits in.</param>
    /// <param name="name">Device name, e.g. "0009:01:00.0".</param>
    /// <param name="barSizes">Memory BAR sizes (powers of two, at least 4 KiB).</param>
    public VfioPciDevice(Host host, string name, params ulong[] barSizes)
        : this(host, name, barSizes.Select((s, i) => (i, s)).ToArray())
    {
    }

    /// <param name="host">The host the device sits in.</param>
    /// <param name="name">Device name, e.g. "0009:01:00.0".</param>
    /// <param name="bars">Memory BARs by BAR number (0 .. 5). Numbers may have gaps: a 64-bit memory BAR takes two
    /// BAR registers, so three 64-bit BARs are BAR0, BAR2 and BAR4.</param>
    public VfioPciDevice(Host host, string name, params (int Index, ulong Size)[] bars)
    {
        Name = name;
        foreach (var (i, size) in bars.OrderBy(b => b.Index))
        {
            if ((uint)i > 5 || _byIndex.ContainsKey(i))
                throw new ArgumentException($"BAR{i} of {name}: BAR numbers are 0 .. 5, each used once");
            if (size < PAGE_SIZE || (size & (size - 1)) != 0)
                throw new ArgumentException($"BAR{i} of {name}: size {size} is not a power of two of at least 4 KiB");
            var region = host.Memory.AddDeviceRegion($"{name} BAR{i}", size, PhysRegionKind.Mmio, alignment: size);
            _bars.Add(region);
            _byIndex[i] = region;
        }
    }

    public string Name { get; }

    /// <summary>The memory BARs, in BAR-number order.</summary>
    public IReadOnlyList<PhysRegion> Bars => _bars;

    /// <summary>
    /// mmap of BAR <paramref name="bar"/> at <paramref name="offset"/> (default: the whole BAR). EINVAL for a bad BAR,
    /// an unaligned offset, or a range beyond the BAR.
    /// </summary>
    public KvmResult<Vma> MmapBar(Process process, int bar, ulong offset = 0, ulong? length = null,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null)
    {
        // vfio_pci_core_mmap: a BAR the device does not implement has no mmap-able region (EINVAL).
        if (!_byIndex.TryGetValue(bar, out var region))
            return Errno.EINVAL;
        if (!DeviceMmap.TryRange(region.Size, offset, length, out var len))
            return Errno.EINVAL;
        return MapPfns(process, $"vfio-pci {Name} BAR{bar}", region.Base + offset, len, new PgProt(MtIndex.MT_DEVICE_nGnRE),
            VmFlags.VM_ALLOW_ANY_UNCACHED, prot, fixedAddress, hugeFaults: true);
    }

    /// <summary>
    /// A VM_PFNMAP mapping of [pa, pa+length) into a new shared VMA: VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP plus
    /// <paramref name="extraFlags"/>, vm_pgoff = first pfn. Large mappings are aligned so block mappings are possible.
    /// <paramref name="hugeFaults"/>: filled by a huge_fault handler (vfio-pci, nvgrace-gpu), else remap_pfn_range.
    /// </summary>
    internal static KvmResult<Vma> MapPfns(Process process, string name, ulong pa, ulong length, PgProt pgprot,
        VmFlags extraFlags, Prot prot, ulong? fixedAddress, bool hugeFaults = false)
    {
        var flags = DeviceMmap.Flags(prot, VmFlags.VM_PFNMAP | extraFlags);
        return process.Mm.InsertVma(length, flags, pgprot, pa >> PAGE_SHIFT, new LinearPfnBacking(name, hugeFaults), name,
            fixedAddress, DeviceMmap.Alignment(pa, length, fixedAddress));
    }
}
