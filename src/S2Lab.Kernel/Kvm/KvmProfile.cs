using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// The architecture-dependent limits of KVM's generic memslot code, so the same code can be compared against a real
/// kernel on another architecture. <see cref="Arm64"/> is the model's architecture; <see cref="X86_64"/> exists to
/// differential-test the generic rules (19-34) against /dev/kvm on an x86_64 machine.
/// </summary>
public sealed record KvmProfile
{
    /// <summary>Profile name ("arm64", "x86_64").</summary>
    public required string Name { get; init; }

    public required KvmArch Arch { get; init; }

    /// <summary>KVM_USER_MEM_SLOTS (rule 20): 32767 on arm64, 32764 on x86 (3 internal slots).</summary>
    public required int UserMemSlots { get; init; }

    /// <summary>KVM_MEM_SLOTS_NUM = SHRT_MAX (rule 26).</summary>
    public int MemSlotsNum { get; init; } = 32767;

    /// <summary>kvm_arch_nr_memslot_as_ids() (rule 26): 1 on arm64; x86 has 2 with SMM, 1 without.</summary>
    public required int AddressSpaces { get; init; }

    /// <summary>kvm_arch_has_readonly_mem(): KVM_MEM_READONLY is a valid flag (rule 21).</summary>
    public bool ReadonlyMem { get; init; } = true;

    /// <summary>
    /// Whether KVM_MEM_GUEST_MEMFD is valid and KVM_CREATE_GUEST_MEMFD works; null: from the design's version (arm64
    /// from 6.18).
    /// </summary>
    public bool? GuestMemfd { get; init; }

    /// <summary>The access_ok() limit for memslot userspace ranges (rule 24): uaddr + size must not exceed it.</summary>
    public required ulong UserAddressLimit { get; init; }

    /// <summary>Rule 33: the errno for binding a guest_memfd range that is already bound (EINVAL older, EEXIST newest).</summary>
    public Errno GmemBindOverlapErrno { get; init; } = Errno.EINVAL;

    /// <summary>
    /// x86 only: the guest physical address width behind kvm_mmu_max_gfn(): the host's MAXPHYADDR with TDP, 52 with the
    /// shadow MMU (the development machine's kernel: measured by the Linux helper, docs/kvm-x86-differences.md P1).
    /// </summary>
    public int X86MaxGpaBits { get; init; } = 52;

    /// <summary>KVM_CAP_MAX_VCPUS and the KVM_CREATE_VCPU id limit (arm64 with GICv3: 512; x86: 1024).</summary>
    public int MaxVcpus { get; init; } = 512;

    /// <summary>KVM_MEM_MAX_NR_PAGES (rule 28).</summary>
    public ulong MaxNrPages { get; init; } = (1UL << 31) - 1;

    /// <summary>arm64: 32767 user slots, one address space, 48-bit user VA.</summary>
    public static KvmProfile Arm64 { get; } = new()
    {
        Name = "arm64",
        Arch = KvmArch.Arm64,
        UserMemSlots = 32767,
        AddressSpaces = 1,
        UserAddressLimit = 1UL << 48,
    };

    /// <summary>
    /// x86_64: 32764 user slots; one address space (KVM_CAP_MULTI_ADDRESS_SPACE = 0 on this machine's kernel; use
    /// <see cref="WithAddressSpaces"/> for 2); x86's own prepare check instead of arm64's; 4-level paging user limit.
    /// </summary>
    public static KvmProfile X86_64 { get; } = new()
    {
        Name = "x86_64",
        Arch = KvmArch.X86_64,
        UserMemSlots = 32764,
        AddressSpaces = 1,
        GuestMemfd = true,
        MaxVcpus = 1024,
        UserAddressLimit = 0x7FFF_FFFF_F000,
    };

    /// <summary>This profile with another number of address spaces (x86 with SMM: 2).</summary>
    public KvmProfile WithAddressSpaces(int n) => this with { AddressSpaces = n };

    /// <summary>A profile by name ("arm64", "x86_64"), or null.</summary>
    public static KvmProfile? Find(string name) => name.ToLowerInvariant() switch
    {
        "arm64" or "aarch64" => Arm64,
        "x86_64" or "x86" or "amd64" => X86_64,
        _ => null,
    };
}
