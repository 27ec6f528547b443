using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>The Grace superchip generation.</summary>
public enum NvGraceGpuModel
{
    /// <summary>Grace Hopper: has the MIG hardware bug, so a 1 GiB non-cacheable resmem is carved out.</summary>
    GH200,

    /// <summary>Grace Blackwell with MIG_SUPPORTED_WITH_CACHED_RESMEM: no resmem, all device memory is usemem.</summary>
    GB200,

    /// <summary>Grace Blackwell Ultra (PCI ID 0x31C2): as <see cref="GB200"/> for the driver, no resmem.</summary>
    GB300,
}

/// <summary>What the driver derives from the superchip generation.</summary>
public static class NvGraceGpuModels
{
    /// <summary>
    /// The MIG hardware bug (nvgrace_gpu_has_mig_hw_bug): only Grace Hopper has it, so only there the driver carves a
    /// non-cacheable resmem out of the device memory; Grace Blackwell parts expose it all as usemem.
    /// </summary>
    public static bool HasResmem(this NvGraceGpuModel model) => model == NvGraceGpuModel.GH200;
}

/// <summary>How the driver maps usemem into a process.</summary>
public enum NvGraceUsememMapping
{
    /// <summary>What nvgrace-gpu does: remap_pfn_range at mmap time, VM_PFNMAP|VM_IO, vm_pgoff = start pfn.</summary>
    Pfnmap,

    /// <summary>
    /// What a driver using vmf_insert_mixed from its fault handler would produce: VM_MIXEDMAP|VM_IO instead of
    /// VM_PFNMAP|VM_IO, the same pgprot and the same pfns; vm_pgoff stays the vfio file offset (region index in the
    /// high bits), since nothing rewrites it.
    /// </summary>
    Mixedmap,
}

/// <summary>Sizes of an nvgrace-gpu device (the real ones by default; scenarios scale them down keeping the shape).</summary>
/// <param name="MemorySize">Device memory (HBM) the ACPI tables report (nvidia,gpu-mem-size).</param>
/// <param name="MemoryBase">Its host physical base (nvidia,gpu-mem-base-pa); null places it at the next device address.</param>
/// <param name="Bar0Size">The real MMIO BAR0 (16 MiB).</param>
/// <param name="ResmemSize">RESMEM_SIZE, carved from the end on GH200 (1 GiB).</param>
/// <param name="MemblkSize">MEMBLK_SIZE, the usemem rounding (512 MiB, an ABI value shared with the firmware).</param>
/// <param name="UsememMapping">How mmap of usemem maps it (<see cref="NvGraceUsememMapping.Pfnmap"/> is the real driver).</param>
public sealed record NvGraceGpuConfig(
    NvGraceGpuModel Model,
    ulong MemorySize = 96UL << 30,
    ulong? MemoryBase = null,
    ulong Bar0Size = 16UL << 20,
    ulong ResmemSize = 1UL << 30,
    ulong MemblkSize = 512UL << 20,
    NvGraceUsememMapping UsememMapping = NvGraceUsememMapping.Pfnmap);

/// <summary>
/// The nvgrace-gpu vfio variant driver (drivers/vfio/pci/nvgrace-gpu): the GPU's coherent HBM, outside the host's
/// linear map, exposed as usemem (cacheable, VM_PFNMAP|VM_IO, MT_NORMAL, no VM_ALLOW_ANY_UNCACHED) and, on GH200,
/// resmem (write-combine MT_NORMAL_NC with VM_ALLOW_ANY_UNCACHED); BAR0 is a plain vfio-pci MMIO BAR.
/// </summary>
public sealed class NvGraceGpu
{
    /// <summary>Probes the device: adds its device memory and BAR0 to the host memory map.</summary>
    public NvGraceGpu(Host host, string name, NvGraceGpuConfig config)
    {
        if (config.MemorySize == 0)
            throw new ArgumentException("nvgrace-gpu: a device memory size of 0 means the C2C link is down (probe fails with -ENOMEM)");
        Name = name;
        Config = config;
        DeviceMemory = host.Memory.AddDeviceRegion($"{name} HBM", config.MemorySize, PhysRegionKind.DeviceMemory, config.MemoryBase);
        Pci = new VfioPciDevice(host, name, config.Bar0Size);
        var memphys = DeviceMemory.Base;
        if (config.Model.HasResmem())
        {
            if (config.MemorySize <= config.ResmemSize)
                throw new ArgumentException("nvgrace-gpu GH200: device memory must exceed the 1 GiB resmem (usemem would be empty: -EINVAL)");
            var usemem = AlignDown(config.MemorySize - config.ResmemSize, config.MemblkSize);
            if (usemem == 0)
                throw new ArgumentException("nvgrace-gpu GH200: usemem rounds down to 0 (-EINVAL)");
            Usemem = new PhysRegion($"{name} usemem", memphys, usemem, PhysRegionKind.DeviceMemory);
            Resmem = new PhysRegion($"{name} resmem", memphys + config.MemorySize - config.ResmemSize, config.ResmemSize, PhysRegionKind.DeviceMemory);
        }
        else
        {
            Usemem = new PhysRegion($"{name} usemem", memphys, config.MemorySize, PhysRegionKind.DeviceMemory);
        }
    }

    public string Name { get; }

    public NvGraceGpuConfig Config { get; }

    /// <summary>All device memory.</summary>
    public PhysRegion DeviceMemory { get; }

    /// <summary>The cacheable region (fake BAR4/5).</summary>
    public PhysRegion Usemem { get; }

    /// <summary>The non-cacheable region (fake BAR2/3), GH200 only.</summary>
    public PhysRegion? Resmem { get; }

    /// <summary>The vfio-pci function carrying BAR0.</summary>
    public VfioPciDevice Pci { get; }

    /// <summary>The size reported for a fake BAR: the region rounded up to a power of two.</summary>
    public static ulong FakeBarSize(ulong length) => length <= 1 ? 1 : 1UL << (64 - System.Numerics.BitOperations.LeadingZeroCount(length - 1));

    /// <summary>VFIO_PCI_OFFSET_SHIFT: a vfio-pci region's index sits above bit 40 of the mmap offset.</summary>
    public const int VfioPciOffsetShift = 40;

    /// <summary>The fake BAR usemem is exposed as (VFIO_PCI_BAR4_REGION_INDEX).</summary>
    public const int UsememRegionIndex = 4;

    /// <summary>
    /// mmap of usemem with the default cacheable pgprot (MT_NORMAL). With <see cref="NvGraceUsememMapping.Pfnmap"/>
    /// (the driver): remap_pfn_range, VM_PFNMAP|VM_IO, vm_pgoff = start pfn. With
    /// <see cref="NvGraceUsememMapping.Mixedmap"/>: VM_MIXEDMAP|VM_IO, the same pfns inserted on fault.
    /// </summary>
    public KvmResult<Vma> MmapUsemem(Process process, ulong offset = 0, ulong? length = null, ulong? fixedAddress = null)
    {
        if (Config.UsememMapping == NvGraceUsememMapping.Pfnmap)
            return Map(process, Usemem, offset, length, PgProt.Default, VmFlags.VM_NONE, fixedAddress);
        if (!DeviceMmap.TryRange(Usemem.Size, offset, length, out var len))
            return Errno.EINVAL;
        var flags = DeviceMmap.Flags(Prot.PROT_READ | Prot.PROT_WRITE, VmFlags.VM_MIXEDMAP);
        var pgoff = (((ulong)UsememRegionIndex << VfioPciOffsetShift) + offset) >> PAGE_SHIFT;
        return process.Mm.InsertVma(len, flags, PgProt.Default, pgoff, new MixedUsememBacking(Usemem), $"{Usemem.Name} (mixedmap)",
            fixedAddress, DeviceMmap.Alignment(Usemem.Base + offset, len, fixedAddress));
    }

    /// <summary>mmap of resmem: pgprot_writecombine (MT_NORMAL_NC) and VM_ALLOW_ANY_UNCACHED. ENODEV on GB200 (no such region).</summary>
    public KvmResult<Vma> MmapResmem(Process process, ulong offset = 0, ulong? length = null, ulong? fixedAddress = null) =>
        Resmem is null ? Errno.ENODEV
            : Map(process, Resmem, offset, length, new PgProt(MtIndex.MT_NORMAL_NC), VmFlags.VM_ALLOW_ANY_UNCACHED, fixedAddress);

    /// <summary>mmap of BAR0 through vfio-pci (MT_DEVICE_nGnRE, VM_ALLOW_ANY_UNCACHED).</summary>
    public KvmResult<Vma> MmapBar0(Process process, ulong? fixedAddress = null) => Pci.MmapBar(process, 0, fixedAddress: fixedAddress);

    private KvmResult<Vma> Map(Process process, PhysRegion region, ulong offset, ulong? length, PgProt pgprot, VmFlags extra, ulong? fixedAddress)
    {
        if (!DeviceMmap.TryRange(region.Size, offset, length, out var len))
            return Errno.EINVAL;
        // nvgrace_gpu_vfio_pci_huge_fault (7.x): PMD/PUD leaves where aligned.
        return VfioPciDevice.MapPfns(process, region.Name, region.Base + offset, len, pgprot, extra,
            Prot.PROT_READ | Prot.PROT_WRITE, fixedAddress, hugeFaults: true);
    }

    /// <summary>
    /// usemem behind a vmf_insert_mixed fault handler: the pfn is usemem's base plus the offset within the region
    /// (vm_pgoff without the region index bits, plus the page's place in the VMA).
    /// </summary>
    private sealed class MixedUsememBacking(PhysRegion usemem) : IVmaBacking
    {
        public string Kind => "nvgrace-gpu usemem (mixedmap)";

        public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

        public HostPte? Lookup(Vma vma, ulong hva)
        {
            var off = ((vma.PgOff << PAGE_SHIFT) & ((1UL << VfioPciOffsetShift) - 1)) + (hva - vma.Start);
            return off < usemem.Size ? new HostPte((usemem.Base + off) >> PAGE_SHIFT, PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0) : null;
        }

        public void Release(Vma vma, ulong start, ulong end)
        {
        }
    }
}
