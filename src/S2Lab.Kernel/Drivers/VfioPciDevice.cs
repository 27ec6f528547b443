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

    /// <param name="host">The host the device sits in.</param>
    /// <param name="name">Device name, e.g. "0009:01:00.0".</param>
    /// <param name="barSizes">Memory BAR sizes (powers of two, at least 4 KiB).</param>
    public VfioPciDevice(Host host, string name, params ulong[] barSizes)
    {
        Name = name;
        foreach (var (size, i) in barSizes.Select((s, i) => (s, i)))
        {
            if (size < PAGE_SIZE || (size & (size - 1)) != 0)
                throw new ArgumentException($"BAR{i} of {name}: size {size} is not a power of two of at least 4 KiB");
            _bars.Add(host.Memory.AddDeviceRegion($"{name} BAR{i}", size, PhysRegionKind.Mmio, alignment: size));
        }
    }

    public string Name { get; }

    /// <summary>The memory BARs, by index.</summary>
    public IReadOnlyList<PhysRegion> Bars => _bars;

    /// <summary>
    /// mmap of BAR <paramref name="bar"/> at <paramref name="offset"/> (default: the whole BAR). EINVAL for a bad BAR,
    /// an unaligned offset, or a range beyond the BAR.
    /// </summary>
    public KvmResult<Vma> MmapBar(Process process, int bar, ulong offset = 0, ulong? length = null,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null)
    {
        if ((uint)bar >= (uint)_bars.Count)
            return Errno.EINVAL;
        var region = _bars[bar];
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
