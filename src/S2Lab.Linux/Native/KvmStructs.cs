using System.Runtime.InteropServices;

namespace S2Lab.Linux.Native;

/// <summary>struct kvm_userspace_memory_region (include/uapi/linux/kvm.h), 32 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct KvmUserspaceMemoryRegionNative
{
    [FieldOffset(0)] public uint Slot;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public ulong GuestPhysAddr;
    [FieldOffset(16)] public ulong MemorySize;
    [FieldOffset(24)] public ulong UserspaceAddr;
}

/// <summary>struct kvm_userspace_memory_region2, 160 bytes: the v1 fields, then the guest_memfd binding and pads.</summary>
[StructLayout(LayoutKind.Explicit, Size = 160)]
public unsafe struct KvmUserspaceMemoryRegion2Native
{
    [FieldOffset(0)] public uint Slot;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public ulong GuestPhysAddr;
    [FieldOffset(16)] public ulong MemorySize;
    [FieldOffset(24)] public ulong UserspaceAddr;
    [FieldOffset(32)] public ulong GuestMemfdOffset;
    [FieldOffset(40)] public uint GuestMemfd;
    [FieldOffset(44)] public uint Pad1;
    [FieldOffset(48)] public fixed ulong Pad2[14];
}

/// <summary>struct kvm_create_guest_memfd, 64 bytes: u64 size, u64 flags, u64 reserved[6].</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public unsafe struct KvmCreateGuestMemfdNative
{
    [FieldOffset(0)] public ulong Size;
    [FieldOffset(8)] public ulong Flags;
    [FieldOffset(16)] public fixed ulong Reserved[6];
}

/// <summary>struct kvm_enable_cap, 104 bytes: u32 cap, u32 flags, u64 args[4], u8 pad[64].</summary>
[StructLayout(LayoutKind.Explicit, Size = 104)]
public unsafe struct KvmEnableCapNative
{
    [FieldOffset(0)] public uint Cap;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public fixed ulong Args[4];
    [FieldOffset(40)] public fixed byte Pad[64];
}

/// <summary>struct kvm_dirty_log, 16 bytes: u32 slot, u32 padding1, then a union of the bitmap pointer and a u64.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmDirtyLogNative
{
    [FieldOffset(0)] public uint Slot;
    [FieldOffset(4)] public uint Padding1;
    [FieldOffset(8)] public ulong DirtyBitmap;
}

/// <summary>The head of struct kvm_run (the vCPU's shared page): the fields S2Lab reads.</summary>
public static class KvmRunLayout
{
    /// <summary>__u8 immediate_exit.</summary>
    public const int ImmediateExit = 1;

    /// <summary>__u32 exit_reason.</summary>
    public const int ExitReason = 8;

    /// <summary>The exit union starts at 32; for KVM_EXIT_MMIO: u64 phys_addr, u8 data[8], u32 len, u8 is_write.</summary>
    public const int MmioPhysAddr = 32, MmioData = 40, MmioLen = 48, MmioIsWrite = 52;
}

/// <summary>struct kvm_sregs (x86_64, 312 bytes): eight kvm_segment (cs, ds, es, fs, gs, ss, tr, ldt; 24 bytes each), gdt, idt, control registers, efer, apic_base, interrupt_bitmap.</summary>
[StructLayout(LayoutKind.Sequential, Size = 312)]
public unsafe struct KvmSregsNative
{
    public fixed byte Bytes[312];

    /// <summary>Offset of segment <paramref name="index"/> (0 = cs, 1 = ds, 2 = es, 3 = fs, 4 = gs, 5 = ss).</summary>
    public static int Segment(int index) => index * 24;

    // Within struct kvm_segment: base (u64), limit (u32), selector (u16), type, present, dpl, db, s, l, g, avl, unusable, padding.
    public const int SegBase = 0, SegLimit = 8, SegSelector = 12, SegG = 20;
}

/// <summary>struct kvm_regs (x86_64, 144 bytes): rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8-r15, rip, rflags.</summary>
[StructLayout(LayoutKind.Sequential, Size = 144)]
public unsafe struct KvmRegsNative
{
    public fixed ulong Regs[18];

    public const int Rip = 16, Rflags = 17;
}

/// <summary>struct kvm_vcpu_init (arm64): target and seven feature words.</summary>
[StructLayout(LayoutKind.Sequential, Size = 32)]
public unsafe struct KvmVcpuInitNative
{
    public uint Target;
    public fixed uint Features[7];
}

/// <summary>struct kvm_one_reg: register id and the userspace address of its value.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmOneRegNative
{
    [FieldOffset(0)] public ulong Id;
    [FieldOffset(8)] public ulong Addr;
}
