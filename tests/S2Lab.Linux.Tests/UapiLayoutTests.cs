using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux.Tests;

/// <summary>Struct layouts and ioctl numbers against include/uapi/linux/kvm.h (docs/rules.md, rules 19-34). No KVM needed.</summary>
public class UapiLayoutTests
{
    [Fact]
    public void Memory_region_v1_is_32_bytes_with_the_uapi_offsets()
    {
        Assert.Equal(32, Unsafe.SizeOf<KvmUserspaceMemoryRegionNative>());
        Assert.Equal(0, Offset<KvmUserspaceMemoryRegionNative>(nameof(KvmUserspaceMemoryRegionNative.Slot)));
        Assert.Equal(4, Offset<KvmUserspaceMemoryRegionNative>(nameof(KvmUserspaceMemoryRegionNative.Flags)));
        Assert.Equal(8, Offset<KvmUserspaceMemoryRegionNative>(nameof(KvmUserspaceMemoryRegionNative.GuestPhysAddr)));
        Assert.Equal(16, Offset<KvmUserspaceMemoryRegionNative>(nameof(KvmUserspaceMemoryRegionNative.MemorySize)));
        Assert.Equal(24, Offset<KvmUserspaceMemoryRegionNative>(nameof(KvmUserspaceMemoryRegionNative.UserspaceAddr)));
    }

    [Fact]
    public unsafe void Memory_region_v2_is_160_bytes_with_the_guest_memfd_fields_at_32_40_44_48()
    {
        Assert.Equal(160, Unsafe.SizeOf<KvmUserspaceMemoryRegion2Native>());
        Assert.Equal(0, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.Slot)));
        Assert.Equal(4, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.Flags)));
        Assert.Equal(8, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.GuestPhysAddr)));
        Assert.Equal(16, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.MemorySize)));
        Assert.Equal(24, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.UserspaceAddr)));
        Assert.Equal(32, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.GuestMemfdOffset)));
        Assert.Equal(40, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.GuestMemfd)));
        Assert.Equal(44, Offset<KvmUserspaceMemoryRegion2Native>(nameof(KvmUserspaceMemoryRegion2Native.Pad1)));
        var r = default(KvmUserspaceMemoryRegion2Native);
        var pad2 = (byte*)r.Pad2 - (byte*)&r;
        Assert.Equal(48, pad2);
        Assert.Equal(160, pad2 + 14 * sizeof(ulong)); // pad2[14] runs to the end
    }

    [Fact]
    public unsafe void Create_guest_memfd_is_64_bytes_size_flags_reserved6()
    {
        Assert.Equal(64, Unsafe.SizeOf<KvmCreateGuestMemfdNative>());
        Assert.Equal(0, Offset<KvmCreateGuestMemfdNative>(nameof(KvmCreateGuestMemfdNative.Size)));
        Assert.Equal(8, Offset<KvmCreateGuestMemfdNative>(nameof(KvmCreateGuestMemfdNative.Flags)));
        var g = default(KvmCreateGuestMemfdNative);
        Assert.Equal(16, (byte*)g.Reserved - (byte*)&g);
    }

    [Fact]
    public void Dirty_log_is_16_bytes_with_the_bitmap_at_8()
    {
        Assert.Equal(16, Unsafe.SizeOf<KvmDirtyLogNative>());
        Assert.Equal(0, Offset<KvmDirtyLogNative>(nameof(KvmDirtyLogNative.Slot)));
        Assert.Equal(8, Offset<KvmDirtyLogNative>(nameof(KvmDirtyLogNative.DirtyBitmap)));
    }

    [Fact]
    public void Enable_cap_is_104_bytes_with_the_args_at_8()
    {
        // struct kvm_enable_cap: u32 cap, u32 flags, u64 args[4], u8 pad[64] (include/uapi/linux/kvm.h).
        Assert.Equal(104, Unsafe.SizeOf<KvmEnableCapNative>());
        Assert.Equal(8, Offset<KvmEnableCapNative>(nameof(KvmEnableCapNative.Args)));
    }

    // The request numbers as the kernel headers expand them (e.g. strace prints KVM_SET_USER_MEMORY_REGION as 0x4020ae46).
    [Theory]
    [InlineData("GET_API_VERSION", 0xae00u)]
    [InlineData("CREATE_VM", 0xae01u)]
    [InlineData("CHECK_EXTENSION", 0xae03u)]
    [InlineData("GET_VCPU_MMAP_SIZE", 0xae04u)]
    [InlineData("CREATE_VCPU", 0xae41u)]
    [InlineData("GET_DIRTY_LOG", 0x4010ae42u)]
    [InlineData("SET_USER_MEMORY_REGION", 0x4020ae46u)]
    [InlineData("SET_USER_MEMORY_REGION2", 0x40a0ae49u)]
    [InlineData("RUN", 0xae80u)]
    [InlineData("CREATE_GUEST_MEMFD", 0xc040aed4u)]
    [InlineData("ENABLE_CAP", 0x4068aea3u)]
    public void Ioctl_numbers_match_the_uapi_expansion(string name, uint expected)
    {
        var value = (nuint)typeof(KvmIoctls).GetField(name)!.GetValue(null)!;
        Assert.Equal(expected, (uint)value);
    }

    [Fact]
    public void Ioc_encodes_direction_size_type_and_number_in_the_generic_layout()
    {
        Assert.Equal((nuint)0x8004_ae99, Ioctl.Ioc(Ioctl.DirRead, 0xae, 0x99, 4));
        Assert.Equal((nuint)0x3fff_0000 | 0x4000_0000, Ioctl.Ioc(Ioctl.DirWrite, 0, 0, (1 << 14) - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ioctl.Ioc(Ioctl.DirWrite, 0xae, 0, 1 << 14));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ioctl.Ioc(Ioctl.DirWrite, 0x100, 0, 0));
    }

    [Theory]
    [InlineData(22, Errno.EINVAL)]
    [InlineData(17, Errno.EEXIST)]
    [InlineData(14, Errno.EFAULT)]
    [InlineData(9, Errno.EBADF)]
    [InlineData(2, Errno.ENOENT)]
    public void Errno_numbers_map_to_the_enum(int number, Errno expected) => Assert.Equal(expected, LinuxErrno.FromNumber(number));

    [Fact]
    public void Unknown_errno_numbers_are_kept_not_thrown()
    {
        var e = LinuxErrno.FromNumber(75); // EOVERFLOW: not named by the enum
        Assert.Equal(75, (int)e);
        Assert.False(LinuxErrno.IsNamed(e));
        Assert.Equal(Errno.EIO, LinuxErrno.FromNumber(0)); // never success for a failed call
        Assert.Equal(Errno.EIO, LinuxErrno.FromNumber(-3));
    }

    [Theory]
    [InlineData("x86_64", KvmArch.X86_64)]
    [InlineData("aarch64", KvmArch.Arm64)]
    [InlineData("arm64", KvmArch.Arm64)]
    public void Uname_machine_names_map_to_the_arch(string machine, KvmArch arch) => Assert.Equal(arch, LinuxHostInfo.ArchOf(machine));

    [Theory]
    [InlineData("riscv64")]
    [InlineData("s390x")]
    [InlineData("")]
    public void Other_machines_have_no_arch(string machine) => Assert.Null(LinuxHostInfo.ArchOf(machine));

    [Fact]
    public void Uname_reports_this_machine()
    {
        if (!OperatingSystem.IsLinux())
            return;
        var host = LinuxHostInfo.Read();
        Assert.True(host.IsOk);
        Assert.Equal("Linux", host.Value.SysName);
        Assert.False(string.IsNullOrEmpty(host.Value.Release));
        Assert.Equal(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => KvmArch.X86_64,
            Architecture.Arm64 => KvmArch.Arm64,
            _ => (KvmArch?)null,
        }, host.Value.Arch);
    }

    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);
}
