namespace S2Lab.Kernel.Kvm.Uapi;

/// <summary>KVM capability numbers (include/uapi/linux/kvm.h) that S2Lab reads.</summary>
public static class KvmCap
{
    public const uint USER_MEMORY = 3;
    public const uint NR_VCPUS = 9;
    public const uint NR_MEMSLOTS = 10;
    public const uint SYNC_MMU = 16;
    public const uint MAX_VCPUS = 66;
    public const uint READONLY_MEM = 81;
    public const uint MULTI_ADDRESS_SPACE = 118;
    public const uint ARM_VM_IPA_SIZE = 165;
    public const uint ARM_MTE = 205;
    public const uint USER_MEMORY2 = 231;
    public const uint GUEST_MEMFD = 234;
    public const uint ARM_CACHEABLE_PFNMAP_SUPPORTED = 243;
    public const uint GUEST_MEMFD_FLAGS = 244;
}

/// <summary>Memslot flags (struct kvm_userspace_memory_region.flags).</summary>
[Flags]
public enum KvmMemFlags : uint
{
    None = 0,
    LOG_DIRTY_PAGES = 1u << 0,
    READONLY = 1u << 1,
    GUEST_MEMFD = 1u << 2,

    /// <summary>Proposed in series v4–v6 (Marc Zyngier's position); never merged. Only the proposal-memslot-flag design accepts it.</summary>
    ENABLE_CACHEABLE_PFNMAP = 1u << 3,
}

/// <summary>guest_memfd creation flags (struct kvm_create_guest_memfd.flags).</summary>
[Flags]
public enum GuestMemfdFlags : ulong
{
    None = 0,

    /// <summary>GUEST_MEMFD_FLAG_MMAP (6.18+): the file may be mmap()ed; required for arm64 guest_memfd slots (rule 5).</summary>
    MMAP = 1UL << 0,

    /// <summary>GUEST_MEMFD_FLAG_INIT_SHARED (6.18+).</summary>
    INIT_SHARED = 1UL << 1,
}

/// <summary>The CPU architecture a KVM implementation (model or real) runs on.</summary>
public enum KvmArch
{
    Arm64,
    X86_64,
}

/// <summary>struct kvm_userspace_memory_region (KVM_SET_USER_MEMORY_REGION, 32 bytes).</summary>
public readonly record struct KvmUserspaceMemoryRegion(uint Slot, uint Flags, ulong GuestPhysAddr, ulong MemorySize, ulong UserspaceAddr);

/// <summary>struct kvm_userspace_memory_region2 (KVM_SET_USER_MEMORY_REGION2, 160 bytes); the pads are not represented.</summary>
public readonly record struct KvmUserspaceMemoryRegion2(
    uint Slot, uint Flags, ulong GuestPhysAddr, ulong MemorySize, ulong UserspaceAddr, ulong GuestMemfdOffset, uint GuestMemfd)
{
    /// <summary>The v1 fields of this region.</summary>
    public KvmUserspaceMemoryRegion V1 => new(Slot, Flags, GuestPhysAddr, MemorySize, UserspaceAddr);

    /// <summary>A v1 region as the kernel sees it after copying 32 bytes and zeroing the rest.</summary>
    public static KvmUserspaceMemoryRegion2 FromV1(in KvmUserspaceMemoryRegion r) =>
        new(r.Slot, r.Flags, r.GuestPhysAddr, r.MemorySize, r.UserspaceAddr, 0, 0);
}

/// <summary>The system handle: /dev/kvm.</summary>
public interface IKvmSystem : IDisposable
{
    /// <summary>The architecture this KVM serves.</summary>
    KvmArch Arch { get; }

    /// <summary>KVM_GET_API_VERSION (12 on every kernel since 2.6.22).</summary>
    int GetApiVersion();

    /// <summary>KVM_CHECK_EXTENSION on the system fd.</summary>
    KvmResult<long> CheckExtension(uint cap);

    /// <summary>KVM_CREATE_VM. On arm64 the low 8 bits of <paramref name="type"/> are the IPA size (0 = 40 bits).</summary>
    KvmResult<IKvmVm> CreateVm(ulong type = 0);
}

/// <summary>A VM handle (the fd KVM_CREATE_VM returns).</summary>
public interface IKvmVm : IDisposable
{
    /// <summary>KVM_CHECK_EXTENSION on the VM fd.</summary>
    KvmResult<long> CheckExtension(uint cap);

    /// <summary>KVM_SET_USER_MEMORY_REGION. Returns <see cref="Errno.None"/> or the kernel's errno.</summary>
    Errno SetUserMemoryRegion(in KvmUserspaceMemoryRegion region);

    /// <summary>KVM_SET_USER_MEMORY_REGION2.</summary>
    Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region);

    /// <summary>KVM_CREATE_GUEST_MEMFD: a new file descriptor, or the errno.</summary>
    KvmResult<int> CreateGuestMemfd(ulong size, ulong flags);

    /// <summary>KVM_GET_DIRTY_LOG: fills <paramref name="bitmap"/> (one bit per page of the slot) and resets it.</summary>
    Errno GetDirtyLog(uint slot, Span<ulong> bitmap);

    /// <summary>KVM_CREATE_VCPU.</summary>
    KvmResult<IKvmVcpu> CreateVcpu(uint id);

    /// <summary>KVM_ENABLE_CAP on the VM fd (e.g. KVM_CAP_ARM_MTE before any vCPU exists).</summary>
    Errno EnableCap(uint cap, ulong arg0 = 0);
}

/// <summary>Why KVM_RUN returned to userspace.</summary>
public enum KvmExitReason
{
    Unknown = 0,
    Mmio = 6,
    Hlt = 5,
    Shutdown = 8,
    FailEntry = 9,
    Intr = 10,
    SystemEvent = 24,
    MemoryFault = 39,
}

/// <summary>One return of KVM_RUN: the exit reason and, for MMIO, the address and direction.</summary>
public readonly record struct KvmExit(KvmExitReason Reason, ulong PhysAddr = 0, uint Length = 0, bool IsWrite = false);

/// <summary>A vCPU handle.</summary>
public interface IKvmVcpu : IDisposable
{
    uint Id { get; }

    /// <summary>KVM_RUN: an exit, or the errno KVM_RUN fails with (EFAULT, ...).</summary>
    KvmResult<KvmExit> Run();
}
