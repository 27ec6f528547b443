using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Vmm;

/// <summary>What the VMM does with capability 243 (KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED).</summary>
public enum CapabilityPolicy
{
    /// <summary>Create every memslot and let KVM decide (what QEMU does today).</summary>
    TrustKernel,

    /// <summary>
    /// Query capability 243 on the VM fd; refuse to assign cacheable device memory, and to accept an incoming
    /// migration that carries it, where the answer is not 1.
    /// </summary>
    CheckCapability,
}

/// <summary>Where the kernel accepts KVM_MEM_ENABLE_CACHEABLE_PFNMAP: whether to set it on cacheable device regions.</summary>
public enum CacheableFlagChoice
{
    /// <summary>Set the flag: the guest gets cacheable device memory, and the VM can only live on FWB+DIC hosts.</summary>
    PreferCacheable,

    /// <summary>Leave it clear: the memory is mapped Device (or Normal-NC) everywhere, so the VM can move anywhere.</summary>
    PreferMigratable,
}

/// <summary>A VMM's policy.</summary>
/// <param name="Capability">What it does with capability 243.</param>
/// <param name="FlagChoice">Its choice for KVM_MEM_ENABLE_CACHEABLE_PFNMAP.</param>
/// <param name="KernelHasCacheableFlag">
/// The VMM is built against a kernel ABI with KVM_MEM_ENABLE_CACHEABLE_PFNMAP (proposal-memslot-flag). A VMM knows
/// its kernel's ABI from headers; a flag bit the kernel does not know is EINVAL (rule 21).
/// </param>
public sealed record VmmPolicy(CapabilityPolicy Capability, CacheableFlagChoice FlagChoice, bool KernelHasCacheableFlag)
{
    public static VmmPolicy TrustKernel { get; } = new(CapabilityPolicy.TrustKernel, CacheableFlagChoice.PreferCacheable, false);

    public override string ToString() =>
        (Capability == CapabilityPolicy.TrustKernel ? "trust-kernel" : "check-capability") +
        (KernelHasCacheableFlag ? FlagChoice == CacheableFlagChoice.PreferCacheable ? ", flag=prefer-cacheable" : ", flag=prefer-migratable" : "");
}

/// <summary>What a device region is to the VMM: memory that moves with the guest, or registers that do not.</summary>
public enum DeviceRegionRole
{
    /// <summary>MMIO registers: the device's vfio migration driver carries their state.</summary>
    Registers,

    /// <summary>Memory mapped non-cacheable by its driver (nvgrace-gpu resmem, write-combine).</summary>
    Memory,

    /// <summary>Memory its driver maps cacheable (nvgrace-gpu usemem): only FWB+DIC hosts can give it to a guest cacheable.</summary>
    CacheableMemory,
}

/// <summary>
/// What a real VMM knows about device regions without seeing the host's VMAs: the driver a device is bound to and
/// the region index. nvgrace-gpu-vfio-pci exposes its device memory as fake BARs: usemem as BAR4
/// (VFIO_PCI_BAR4_REGION_INDEX, mapped cacheable) and resmem as BAR2 (write-combine); every other BAR of every
/// vfio-pci device is MMIO registers.
/// </summary>
public static class DeviceMemoryPolicy
{
    /// <summary>The vfio driver of NVIDIA Grace GPUs.</summary>
    public const string NvgraceDriver = "nvgrace-gpu-vfio-pci";

    /// <summary>vfio-pci.</summary>
    public const string VfioPciDriver = "vfio-pci";

    /// <summary>The region index of a region name on a device bound to <paramref name="driver"/>, or null if the name means nothing there.</summary>
    public static uint? RegionIndex(string driver, string region) => region switch
    {
        "usemem" when driver == NvgraceDriver => 4,
        "resmem" when driver == NvgraceDriver => 2,
        ['b', 'a', 'r', var c] when c is >= '0' and <= '5' => (uint)(c - '0'),
        _ => null,
    };

    /// <summary>The role of region <paramref name="index"/> of a device bound to <paramref name="driver"/>.</summary>
    public static DeviceRegionRole Role(string driver, uint index) => (driver, index) switch
    {
        (NvgraceDriver, 4) => DeviceRegionRole.CacheableMemory,
        (NvgraceDriver, 2) => DeviceRegionRole.Memory,
        _ => DeviceRegionRole.Registers,
    };

    /// <summary>The role of a region of an opened device.</summary>
    public static DeviceRegionRole Role(VfioDevice device, in VfioRegionInfo region) => Role(device.Driver, region.Index);
}
