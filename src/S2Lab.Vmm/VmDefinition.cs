using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Vmm;

/// <summary>An mmap-able region of an assigned device, as the VMM's host offers it (a vfio region, opened and mmapped).</summary>
public interface IDeviceRegion
{
    /// <summary>The device's name on the host (e.g. "gpu0").</summary>
    string Device { get; }

    /// <summary>The region's name (e.g. "usemem", "bar0").</summary>
    string Region { get; }

    /// <summary>Size in bytes.</summary>
    ulong Size { get; }

    /// <summary>
    /// Whether the region is memory (its contents move with the VM on migration) rather than device registers (whose
    /// state the device's vfio migration driver carries).
    /// </summary>
    bool IsMemory { get; }

    /// <summary>mmap(2) of the region by <paramref name="process"/>: the new VMA, or the errno.</summary>
    KvmResult<Vma> Mmap(Process process);
}

/// <summary>What backs a guest-physical region.</summary>
public abstract record RegionBacking;

/// <summary>Anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS, THP allowed).</summary>
public sealed record AnonymousRam : RegionBacking;

/// <summary>hugetlbfs memory with the given huge page size.</summary>
public sealed record HugetlbRam(ulong HugePageSize) : RegionBacking;

/// <summary>A region of an assigned device, looked up by name on whichever host the VM runs.</summary>
public sealed record DeviceMemory(string Device, string Region) : RegionBacking;

/// <summary>One guest-physical region of a VM: it becomes one memslot.</summary>
public sealed record RegionConfig(string Name, ulong Gpa, ulong Size, bool ReadOnly, RegionBacking Backing)
{
    public bool IsRam => Backing is not DeviceMemory;
}

/// <summary>The VMM's description of a VM (host-independent: device regions are found by name on each host).</summary>
public sealed record VmConfig(string Name, int IpaBits, int Vcpus, IReadOnlyList<RegionConfig> Regions)
{
    /// <summary>Give the guest MTE: KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) right after KVM_CREATE_VM, before any memslot or vCPU.</summary>
    public bool Mte { get; init; }
}

/// <summary>What a VMM process has on one host: its process, /dev/kvm, and the device regions it may assign.</summary>
/// <param name="HostName">For reports.</param>
/// <param name="Process">The VMM process (its mm holds the guest memory mappings).</param>
/// <param name="Kvm">/dev/kvm, opened by that process.</param>
/// <param name="FindDeviceRegion">The device regions of the host, by device and region name.</param>
public sealed record VmmHost(string HostName, Process Process, IKvmSystem Kvm, Func<string, string, IDeviceRegion?> FindDeviceRegion);
