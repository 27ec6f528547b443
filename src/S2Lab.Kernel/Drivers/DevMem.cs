using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>/dev/mem: remap_pfn_range of any physical range (a VM_PFNMAP VMA whose pfns may be kernel map memory).</summary>
public static class DevMem
{
    /// <summary>
    /// mmap of /dev/mem at physical address <paramref name="pa"/>. The pgprot follows arm64's phys_mem_access_prot():
    /// Device-nGnRE outside map memory, write-combine for RAM opened O_SYNC, else cacheable.
    /// </summary>
    public static KvmResult<Vma> Mmap(Process process, ulong pa, ulong length, bool oSync = false,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null)
    {
        if (!IsAligned(pa, PAGE_SIZE) || length == 0)
            return Errno.EINVAL;
        var pgprot = !process.Host.Memory.PfnIsMapMemory(pa >> PAGE_SHIFT) ? new PgProt(MtIndex.MT_DEVICE_nGnRE)
            : oSync ? new PgProt(MtIndex.MT_NORMAL_NC) : PgProt.Default;
        return VfioPciDevice.MapPfns(process, "/dev/mem", pa, AlignUp(length, PAGE_SIZE), pgprot, VmFlags.VM_NONE, prot, fixedAddress);
    }
}

/// <summary>
/// A driver that maps its device memory with VM_MIXEDMAP (vmf_insert_mixed from its fault handler), e.g. a DAX-like
/// device: the pfns are outside map memory, vm_pgoff is the file offset, and the pgprot is the driver's choice.
/// </summary>
public sealed class MixedMapDevice
{
    /// <summary>Adds <paramref name="size"/> bytes of device memory to the host for this driver.</summary>
    public MixedMapDevice(Host host, string name, ulong size, MtIndex attrIndex = MtIndex.MT_NORMAL, ulong? baseAddress = null)
    {
        Name = name;
        PageProt = new PgProt(attrIndex);
        // DAX-like device memory is ZONE_DEVICE: it has struct pages, so GUP takes its pages without VM_IO.
        Region = host.Memory.AddDeviceRegion($"{name} memory", size, PhysRegionKind.DeviceMemory, baseAddress, hasStructPage: true);
    }

    public string Name { get; }

    public PhysRegion Region { get; }

    /// <summary>The pgprot the driver gives its VMAs.</summary>
    public PgProt PageProt { get; }

    /// <summary>mmap at file <paramref name="offset"/>: a VM_MIXEDMAP VMA, pages inserted on fault.</summary>
    public KvmResult<Vma> Mmap(Process process, ulong offset = 0, ulong? length = null,
        Prot prot = Prot.PROT_READ | Prot.PROT_WRITE, ulong? fixedAddress = null)
    {
        var len = length ?? Region.Size - offset;
        if (!IsAligned(offset, PAGE_SIZE) || offset >= Region.Size || len == 0 || len > Region.Size - offset)
            return Errno.EINVAL;
        var flags = VmFlagsExtensions.FromProt(prot) | VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD |
                    VmFlags.VM_MAYWRITE | VmFlags.VM_MIXEDMAP;
        var align = len >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE;
        return process.Mm.InsertVma(len, flags, PageProt, offset >> PAGE_SHIFT, new MixedMapBacking(this), $"{Name} (mixedmap)",
            fixedAddress, fixedAddress is null ? align : PAGE_SIZE);
    }

    private sealed class MixedMapBacking(MixedMapDevice device) : IVmaBacking
    {
        public string Kind => "mixedmap device";

        public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

        public HostPte? Lookup(Vma vma, ulong hva)
        {
            var off = (vma.PgOff << PAGE_SHIFT) + (hva - vma.Start);
            return off < device.Region.Size
                ? new HostPte((device.Region.Base + off) >> PAGE_SHIFT, PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0)
                : null;
        }

        public void Release(Vma vma, ulong start, ulong end)
        {
        }
    }
}
