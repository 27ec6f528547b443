namespace S2Lab.Linux.Native;

/// <summary>KVM ioctl request numbers, computed from the struct sizes as include/uapi/linux/kvm.h does.</summary>
public static class KvmIoctls
{
    /// <summary>KVMIO, the ioctl type byte of every KVM request.</summary>
    public const uint KVMIO = 0xAE;

    /// <summary>KVM_GET_API_VERSION = _IO(KVMIO, 0x00).</summary>
    public static readonly nuint GET_API_VERSION = Ioctl.IO(KVMIO, 0x00);

    /// <summary>KVM_CREATE_VM = _IO(KVMIO, 0x01); the argument is the machine type.</summary>
    public static readonly nuint CREATE_VM = Ioctl.IO(KVMIO, 0x01);

    /// <summary>KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03); the argument is the capability number.</summary>
    public static readonly nuint CHECK_EXTENSION = Ioctl.IO(KVMIO, 0x03);

    /// <summary>KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04).</summary>
    public static readonly nuint GET_VCPU_MMAP_SIZE = Ioctl.IO(KVMIO, 0x04);

    /// <summary>KVM_CREATE_VCPU = _IO(KVMIO, 0x41); the argument is the vCPU id.</summary>
    public static readonly nuint CREATE_VCPU = Ioctl.IO(KVMIO, 0x41);

    /// <summary>KVM_ENABLE_CAP = _IOW(KVMIO, 0xa3, struct kvm_enable_cap).</summary>
    public static readonly nuint ENABLE_CAP = Ioctl.IOW<KvmEnableCapNative>(KVMIO, 0xa3);

    /// <summary>KVM_GET_DIRTY_LOG = _IOW(KVMIO, 0x42, struct kvm_dirty_log).</summary>
    public static readonly nuint GET_DIRTY_LOG = Ioctl.IOW<KvmDirtyLogNative>(KVMIO, 0x42);

    /// <summary>KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region).</summary>
    public static readonly nuint SET_USER_MEMORY_REGION = Ioctl.IOW<KvmUserspaceMemoryRegionNative>(KVMIO, 0x46);

    /// <summary>KVM_SET_USER_MEMORY_REGION2 = _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2).</summary>
    public static readonly nuint SET_USER_MEMORY_REGION2 = Ioctl.IOW<KvmUserspaceMemoryRegion2Native>(KVMIO, 0x49);

    /// <summary>KVM_RUN = _IO(KVMIO, 0x80).</summary>
    public static readonly nuint RUN = Ioctl.IO(KVMIO, 0x80);

    /// <summary>KVM_CREATE_GUEST_MEMFD = _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd).</summary>
    public static readonly nuint CREATE_GUEST_MEMFD = Ioctl.IOWR<KvmCreateGuestMemfdNative>(KVMIO, 0xd4);

    /// <summary>KVM_GET_REGS = _IOR(KVMIO, 0x81, struct kvm_regs) (x86_64).</summary>
    public static readonly nuint GET_REGS = Ioctl.IOR<KvmRegsNative>(KVMIO, 0x81);

    /// <summary>KVM_SET_REGS = _IOW(KVMIO, 0x82, struct kvm_regs) (x86_64).</summary>
    public static readonly nuint SET_REGS = Ioctl.IOW<KvmRegsNative>(KVMIO, 0x82);

    /// <summary>KVM_GET_SREGS = _IOR(KVMIO, 0x83, struct kvm_sregs) (x86_64).</summary>
    public static readonly nuint GET_SREGS = Ioctl.IOR<KvmSregsNative>(KVMIO, 0x83);

    /// <summary>KVM_SET_SREGS = _IOW(KVMIO, 0x84, struct kvm_sregs) (x86_64).</summary>
    public static readonly nuint SET_SREGS = Ioctl.IOW<KvmSregsNative>(KVMIO, 0x84);

    /// <summary>KVM_SET_ONE_REG = _IOW(KVMIO, 0xac, struct kvm_one_reg).</summary>
    public static readonly nuint SET_ONE_REG = Ioctl.IOW<KvmOneRegNative>(KVMIO, 0xac);

    /// <summary>KVM_ARM_VCPU_INIT = _IOW(KVMIO, 0xae, struct kvm_vcpu_init).</summary>
    public static readonly nuint ARM_VCPU_INIT = Ioctl.IOW<KvmVcpuInitNative>(KVMIO, 0xae);

    /// <summary>KVM_ARM_PREFERRED_TARGET = _IOR(KVMIO, 0xaf, struct kvm_vcpu_init).</summary>
    public static readonly nuint ARM_PREFERRED_TARGET = Ioctl.IOR<KvmVcpuInitNative>(KVMIO, 0xaf);
}
