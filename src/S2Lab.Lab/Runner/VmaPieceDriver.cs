using S2Lab.Kernel;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Scenarios.Kinds;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Runner;

/// <summary>
/// The driver behind a <c>pfnmap</c> or <c>mixedmap</c> piece of a <c>vmas</c> region: what a small kernel module
/// (like the oracle's test module) does. At load it takes its pfns, either device memory outside the linear map
/// (ZONE_DEVICE with struct pages for VM_MIXEDMAP, as DAX has) or a naturally aligned block of kernel RAM (the
/// pages the linear map covers, as a driver's alloc_pages + remap_pfn_range gives). Its mmap maps them linearly
/// (vm_pgoff = the first pfn) with the declared pgprot: VM_PFNMAP|VM_IO as remap_pfn_range sets them, or
/// VM_MIXEDMAP, plus VM_ALLOW_ANY_UNCACHED when declared. Nothing here is kernel behaviour: the VMA is built by
/// <see cref="MmStruct.InsertVma"/>, as the model's other drivers build theirs.
/// </summary>
internal sealed class VmaPieceDriver
{
    private readonly VmaPieceSpec _spec;
    private readonly string _name;
    private readonly ulong _pa;

    public VmaPieceDriver(Host host, string name, VmaPieceSpec spec)
    {
        if (spec.Map == VmaMapKind.Anon)
            throw new ArgumentException("an anon piece has no driver", nameof(spec));
        _spec = spec;
        _name = name;
        if (spec.Pfns == VmaPfns.Ram)
        {
            var order = 0;
            while ((PAGE_SIZE << order) < spec.Size)
                order++;
            var pfn = host.Memory.AllocFolio(order)
                ?? throw new InvalidOperationException($"host {host.Name} has no free RAM block of {spec.Size:x} bytes for {name}");
            _pa = pfn << PAGE_SHIFT;
        }
        else
        {
            _pa = host.Memory.AddDeviceRegion($"{name} memory", spec.Size, PhysRegionKind.DeviceMemory,
                hasStructPage: spec.Map == VmaMapKind.Mixedmap).Base;
        }
    }

    /// <summary>The driver's mmap at <paramref name="address"/> (MAP_FIXED): EINVAL beyond its memory.</summary>
    public KvmResult<Vma> Mmap(Process process, ulong address, ulong length, Prot prot)
    {
        if (length > _spec.Size)
            return Errno.EINVAL;
        var flags = VmFlagsExtensions.FromProt(prot) | VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD |
                    VmFlags.VM_MAYWRITE | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP |
                    (_spec.Map == VmaMapKind.Pfnmap ? VmFlags.VM_PFNMAP | VmFlags.VM_IO : VmFlags.VM_MIXEDMAP) |
                    (_spec.AllowAnyUncached ? VmFlags.VM_ALLOW_ANY_UNCACHED : VmFlags.VM_NONE);
        var kind = _spec.Map == VmaMapKind.Pfnmap ? "pfnmap" : "mixedmap";
        return process.Mm.InsertVma(length, flags, new PgProt(_spec.PgProt), _pa >> PAGE_SHIFT,
            new LinearPfnBacking($"{_name} ({kind})"), $"{_name} ({kind})", address);
    }
}
