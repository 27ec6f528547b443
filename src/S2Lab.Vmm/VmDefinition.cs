using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Vmm;

/// <summary>What backs a guest-physical region.</summary>
public abstract record RegionBacking;

/// <summary>Anonymous memory (MAP_PRIVATE|MAP_ANONYMOUS, THP allowed).</summary>
public sealed record AnonymousRam : RegionBacking;

/// <summary>hugetlbfs memory with the given huge page size.</summary>
public sealed record HugetlbRam(ulong HugePageSize) : RegionBacking;

/// <summary>
/// A region of an assigned device, looked up on whichever host the VM runs: the device by its vfio name, the region
/// by the name its driver gives it (<see cref="DeviceMemoryPolicy.RegionIndex"/>: "bar0".."bar5", nvgrace-gpu's
/// "usemem" and "resmem").
/// </summary>
public sealed record DeviceMemory(string Device, string Region) : RegionBacking;

/// <summary>One piece of a <see cref="MappedPieces"/> region: [Offset, Offset + Size) of it, mapped from the device file <paramref name="Path"/>, or anonymous RAM where Path is null.</summary>
public sealed record MappedPiece(ulong Offset, ulong Size, string? Path);

/// <summary>
/// A region covered by several mappings with holes between them: the VMM reserves the whole range (anonymous,
/// PROT_NONE), makes each anonymous piece read-write (mprotect), maps each file piece over the reservation
/// (mmap MAP_SHARED|MAP_FIXED) and unmaps what is left, so that the region's one memslot spans several VMAs and
/// holes (KVM accepts holes: rule 6 walks only the VMAs there are).
/// </summary>
public sealed record MappedPieces(IReadOnlyList<MappedPiece> Pieces) : RegionBacking;

/// <summary>One guest-physical region of a VM: it becomes one memslot.</summary>
public sealed record RegionConfig(string Name, ulong Gpa, ulong Size, bool ReadOnly, RegionBacking Backing)
{
    public bool IsRam => Backing is not DeviceMemory;

    /// <summary>
    /// Create the memslot with KVM_MEM_LOG_DIRTY_PAGES (dirty logging from the start, as a migration target or a VMM
    /// that tracks writes does). KVM refuses it over a VM_PFNMAP VMA with EINVAL (rule 6).
    /// </summary>
    public bool LogDirty { get; init; }
}

/// <summary>The VMM's description of a VM (host-independent: device regions are found by name on each host).</summary>
public sealed record VmConfig(string Name, int IpaBits, int Vcpus, IReadOnlyList<RegionConfig> Regions)
{
    /// <summary>Give the guest MTE: KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) right after KVM_CREATE_VM, before any memslot or vCPU.</summary>
    public bool Mte { get; init; }
}

/// <summary>
/// What a VMM process has on one host, as userspace sees it: /dev/kvm, its own address space, vfio, and a way to put
/// code into a guest. The VMM uses nothing else (LayeringTests: only S2Lab.Kernel.Kvm.Uapi types).
/// </summary>
/// <param name="HostName">For reports.</param>
/// <param name="Kvm">/dev/kvm, opened by the VMM process.</param>
/// <param name="Memory">The VMM process's address space (mmap, munmap, mprotect, mincore, loads and stores).</param>
/// <param name="Vfio">The host's vfio devices the VMM may assign.</param>
/// <param name="Guest">Loads guest code and initialises vCPUs.</param>
public sealed record VmmHost(string HostName, IKvmSystem Kvm, IHostAddressSpace Memory, IVfioHost Vfio, IGuestLoader Guest);
