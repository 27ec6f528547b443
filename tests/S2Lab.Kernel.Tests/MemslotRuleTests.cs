using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;

namespace S2Lab.Kernel.Tests;

/// <summary>Rules 19-34: the generic memslot ioctl, in the kernel's order with its errno.</summary>
public class MemslotRuleTests
{
    private const ulong Ua = 0x7f00_0000_0000;
    private const ulong Mb = 1UL << 20;

    private static ModelKvmVm NewVm(string design = "linux-6.17", string cpu = "neoverse-v2", KvmProfile? profile = null) =>
        new ModelKvmSystem(Host.Create("h", cpu, design), profile).CreateModelVm().Value;

    private static KvmUserspaceMemoryRegion2 R(uint slot, KvmMemFlags flags, ulong gpa, ulong size, ulong ua = Ua, ulong off = 0, uint fd = 0) =>
        new(slot, (uint)flags, gpa, size, ua, off, fd);

    [Theory]
    [InlineData(KvmMemFlags.LOG_DIRTY_PAGES, Errno.None)]
    [InlineData(KvmMemFlags.READONLY, Errno.None)]
    [InlineData(KvmMemFlags.GUEST_MEMFD, Errno.EINVAL)]
    [InlineData(KvmMemFlags.ENABLE_CACHEABLE_PFNMAP, Errno.EINVAL)]
    [InlineData((KvmMemFlags)(1u << 5), Errno.EINVAL)]
    public void Rule19_v1_ioctl_takes_only_LOG_DIRTY_and_READONLY(KvmMemFlags flags, Errno expected)
    {
        // Even on the memslot-flag design with FWB && DIC, the proposed flag is v2-only.
        var vm = NewVm("proposal-memslot-flag");
        Assert.Equal(expected, vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(0, (uint)flags, 0, Mb, Ua)));
    }

    [Theory]
    [InlineData(32766u, Errno.None)]
    [InlineData(32767u, Errno.EINVAL)]
    [InlineData(0xFFFFu, Errno.EINVAL)]
    [InlineData(0x1_0000u, Errno.EINVAL)] // low 16 bits are 0: passes rule 20, fails rule 26 (as_id 1)
    public void Rule20_slot_id_against_KVM_USER_MEM_SLOTS(uint slot, Errno expected) =>
        Assert.Equal(expected, NewVm().SetUserMemoryRegion2(R(slot, 0, 0, Mb)));

    [Fact]
    public void Rule20_runs_before_flag_checks() =>
        Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(40000, (KvmMemFlags)0x80, 1, 3)));

    [Theory]
    [InlineData(KvmMemFlags.LOG_DIRTY_PAGES, Errno.None)]
    [InlineData(KvmMemFlags.READONLY, Errno.None)]
    [InlineData(KvmMemFlags.LOG_DIRTY_PAGES | KvmMemFlags.READONLY, Errno.None)]
    [InlineData(KvmMemFlags.GUEST_MEMFD | KvmMemFlags.READONLY, Errno.EINVAL)]
    [InlineData(KvmMemFlags.GUEST_MEMFD | KvmMemFlags.LOG_DIRTY_PAGES, Errno.EINVAL)]
    [InlineData((KvmMemFlags)(1u << 16), Errno.EINVAL)]
    [InlineData((KvmMemFlags)(1u << 31), Errno.EINVAL)]
    public void Rule21_unknown_or_incompatible_flag_bits_are_EINVAL(KvmMemFlags flags, Errno expected) =>
        Assert.Equal(expected, NewVm().SetUserMemoryRegion2(R(0, flags, 0, Mb)));

    [Fact]
    public void Rule21_every_single_unsupported_bit_is_EINVAL_on_v1_and_v2()
    {
        for (var bit = 0; bit < 32; bit++)
        {
            var f = (KvmMemFlags)(1u << bit);
            if (f is KvmMemFlags.LOG_DIRTY_PAGES or KvmMemFlags.READONLY or KvmMemFlags.GUEST_MEMFD)
                continue;
            var vm = NewVm();
            Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, f, 0, Mb)));
            Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(0, (uint)f, 0, Mb, Ua)));
        }
    }

    [Theory]
    [InlineData("linux-6.8")]
    [InlineData("linux-6.9")]
    public void Rule21_guest_memfd_flag_is_unknown_on_arm64_before_6_18(string design)
    {
        var vm = NewVm(design);
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb)));
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(Mb, 0).Error);
        Assert.Equal(0, vm.CheckExtension(KvmCap.GUEST_MEMFD).Value);
    }

    [Fact]
    public void Rule22_size_not_page_multiple() => Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(0, 0, 0, Mb + 1)));

    [Fact]
    public void Rule23_gpa_not_aligned() => Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(0, 0, 0x800, Mb)));

    [Theory]
    [InlineData(Ua + 0x10, Mb)]
    [InlineData(1UL << 48, Mb)]
    [InlineData((1UL << 48) - Mb, 2 * Mb)]
    public void Rule24_uaddr_unaligned_or_not_a_user_range(ulong ua, ulong size) =>
        Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(0, 0, 0, size, ua)));

    [Fact]
    public void Rule24_range_ending_exactly_at_the_limit_is_fine() =>
        Assert.Equal(Errno.None, NewVm().SetUserMemoryRegion2(R(0, 0, 0, Mb, (1UL << 48) - Mb)));

    [Fact]
    public void Rule25_guest_memfd_offset_unaligned_or_overflowing()
    {
        var vm = NewVm();
        var fd = (uint)vm.CreateGuestMemfd(4 * Mb, (ulong)GuestMemfdFlags.MMAP).Value;
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb, Ua, 0x100, fd)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb, Ua, ulong.MaxValue - 0xFFF, fd)));
        // Without GUEST_MEMFD the offset is not looked at.
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, Mb, Ua, 0x100, 0)));
    }

    [Fact]
    public void Rule26_address_space_id_beyond_the_arch()
    {
        Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(1u << 16, 0, 0, Mb)));
        var smm = NewVm(profile: KvmProfile.X86_64.WithAddressSpaces(2));
        Assert.Equal(Errno.None, smm.SetUserMemoryRegion2(R(1u << 16, 0, 0, Mb)));
        Assert.Equal(Errno.EINVAL, smm.SetUserMemoryRegion2(R(2u << 16, 0, 0, Mb)));
    }

    [Fact]
    public void Rule27_gpa_plus_size_overflows() =>
        Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(0, 0, 0xFFFF_FFFF_FFF0_0000, 2 * Mb)));

    [Fact]
    public void Rule28_more_than_KVM_MEM_MAX_NR_PAGES() =>
        Assert.Equal(Errno.EINVAL, NewVm().SetUserMemoryRegion2(R(0, 0, 0, 1UL << 43, 0x1000)));

    [Fact]
    public void Rule29_deleting_an_absent_slot_is_EINVAL_and_checks_still_apply()
    {
        var vm = NewVm();
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(3, 0, 0, 0)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(3, 0, 0, Mb)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(3, 0, 0x800, 0))); // rule 23 before the delete
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(3, 0, 0, 0)));
        Assert.Null(vm.Memslots().ById(3));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(3, 0, 0, 0)));
    }

    [Fact]
    public void Rule30_create_adds_a_slot()
    {
        var vm = NewVm();
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(5, 0, 0x1000_0000, 2 * Mb)));
        var s = vm.Memslots().ById(5)!;
        Assert.Equal(0x1000_0000UL >> 12, s.BaseGfn);
        Assert.Equal(512UL, s.NPages);
        Assert.Same(s, vm.Memslots().Find(s.BaseGfn + 511));
        Assert.Null(vm.Memslots().Find(s.BaseGfn + 512));
    }

    [Fact]
    public void Rule31_modify_rules()
    {
        var vm = NewVm();
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, 2 * Mb)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, 0, 0, 2 * Mb, Ua + 0x1000))); // uaddr
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, 0, 0, 4 * Mb))); // resize
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.READONLY, 0, 2 * Mb))); // READONLY toggle
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, 2 * Mb))); // no change
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.LOG_DIRTY_PAGES, 0, 2 * Mb))); // FLAGS_ONLY
        Assert.NotNull(vm.Memslots().ById(0)!.DirtyBitmap);
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.LOG_DIRTY_PAGES, 64 * Mb, 2 * Mb))); // MOVE
        Assert.Equal((64 * Mb) >> 12, vm.Memslots().ById(0)!.BaseGfn);
        Assert.Null(vm.Memslots().Find(0));
    }

    [Fact]
    public void Rule32_overlap_in_the_same_address_space_is_EEXIST()
    {
        var vm = NewVm();
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 4 * Mb, 4 * Mb)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, 0, 6 * Mb, 4 * Mb)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, 0, 2 * Mb, 4 * Mb)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, 0, 0, 16 * Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(1, 0, 8 * Mb, 4 * Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(2, 0, 0, 4 * Mb)));
        // A move onto itself is not an overlap; onto a neighbour is.
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(1, 0, 10 * Mb, 4 * Mb, Ua)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, 0, 6 * Mb, 4 * Mb, Ua)));
    }

    [Fact]
    public void Rule32_other_address_spaces_never_conflict()
    {
        var vm = NewVm(profile: KvmProfile.X86_64.WithAddressSpaces(2));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, 4 * Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R((1u << 16) | 1, 0, 0, 4 * Mb)));
    }

    [Fact]
    public void Rule33_guest_memfd_bind_errors()
    {
        var host = Host.Create("h", "neoverse-v2", "linux-6.17");
        var kvm = new ModelKvmSystem(host);
        var vm = kvm.CreateModelVm().Value;
        var other = kvm.CreateModelVm().Value;
        var fd = (uint)vm.CreateGuestMemfd(4 * Mb, (ulong)GuestMemfdFlags.MMAP).Value;
        var foreign = (uint)other.CreateGuestMemfd(4 * Mb, (ulong)GuestMemfdFlags.MMAP).Value;
        var plain = (uint)kvm.Process.InstallFd(new object());
        Assert.Equal(Errno.EBADF, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb, Ua, 0, 999)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb, Ua, 0, plain)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, Mb, Ua, 0, foreign)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb, Ua, 3 * Mb, fd)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb, Ua, 0, fd)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(1, KvmMemFlags.GUEST_MEMFD, 8 * Mb, 2 * Mb, Ua, Mb, fd)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(1, KvmMemFlags.GUEST_MEMFD, 8 * Mb, 2 * Mb, Ua, 2 * Mb, fd)));
        // Deleting unbinds the range.
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, 0)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb, Ua, 0, fd)));
    }

    [Fact]
    public void Rule33_overlapping_binding_errno_is_configurable()
    {
        var kvm = new ModelKvmSystem(Host.Create("h", "neoverse-v2", "linux-6.17"), KvmProfile.Arm64 with { GmemBindOverlapErrno = Errno.EEXIST });
        var vm = kvm.CreateModelVm().Value;
        var fd = (uint)vm.CreateGuestMemfd(4 * Mb, (ulong)GuestMemfdFlags.MMAP).Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb, Ua, 0, fd)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, KvmMemFlags.GUEST_MEMFD, 8 * Mb, 2 * Mb, Ua, Mb, fd)));
    }

    [Fact]
    public void Rule34_generic_checks_run_before_arm64_prepare()
    {
        // An overlapping slot beyond the IPA range: EEXIST (rule 32) wins over EFAULT (rule 4).
        var vm = NewVm();
        Assert.Equal(Errno.EFAULT, vm.SetUserMemoryRegion2(R(0, 0, 1UL << 40, Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, (1UL << 40) - 2 * Mb, 2 * Mb)));
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion2(R(1, 0, (1UL << 40) - Mb, 2 * Mb)));
    }

    [Fact]
    public void Rule34_delete_and_move_zap_the_old_range_and_a_failed_move_keeps_the_slot()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(4 * Mb);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0x4000_0000, ram));
        Assert.Equal(GuestAccessOutcome.Completed, rig.Write(0x4000_0000, 7).Outcome);
        Assert.NotNull(rig.Vm.Stage2.GetLeaf(0x4000_0000));
        // MOVE beyond the IPA space fails in the arm64 prepare (EFAULT): the slot stays where it was.
        Assert.Equal(Errno.EFAULT, rig.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 1UL << 40, 4 * Mb, ram.Start, 0, 0)));
        Assert.Equal(0x4000_0000UL >> 12, rig.Vm.Memslots().ById(0)!.BaseGfn);
        Assert.Equal(7UL, BitConverter.ToUInt64(rig.Read(0x4000_0000).Data));
        // MOVE: the old IPA is unmapped, the data is found at the new IPA.
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 0x8000_0000, 4 * Mb, ram.Start, 0, 0)));
        Assert.Null(rig.Vm.Stage2.GetLeaf(0x4000_0000));
        Assert.Equal(GuestAccessOutcome.MmioExit, rig.Read(0x4000_0000).Outcome);
        Assert.Equal(7UL, BitConverter.ToUInt64(rig.Read(0x8000_0000).Data));
        // DELETE zaps.
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 0x8000_0000, 0, ram.Start, 0, 0)));
        Assert.Empty(rig.Vm.Stage2.Leaves());
    }

    [Fact]
    public void Nr_memslots_can_all_be_filled_then_one_more_is_EINVAL()
    {
        var vm = NewVm();
        for (uint i = 0; i < 32767; i++)
            Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(i, 0, (ulong)i << 12, 0x1000, Ua + ((ulong)i << 12))));
        Assert.Equal(32767, vm.Memslots().Count);
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(32767, 0, 1UL << 30, 0x1000)));
        for (uint i = 0; i < 32767; i += 97)
            Assert.Equal(i, (uint)vm.Memslots().Find(i)!.Id);
    }

    [Fact]
    public void X86_prepare_rejects_slots_past_the_max_gfn_with_EINVAL()
    {
        var vm = NewVm(profile: KvmProfile.X86_64 with { X86MaxGpaBits = 39 });
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, (1UL << 39) - Mb, Mb)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(1, 0, 1UL << 39, Mb)));
        // x86 does not run arm64's rules: no EFAULT for the IPA size, no VMA walk.
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, 0)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(1, 0, (1UL << 39) - 0x1000, 2 * 0x1000)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(1, 0, (1UL << 39) - 0x2000, 2 * 0x1000)));
    }

    [Fact]
    public void Get_dirty_log_errors()
    {
        var vm = NewVm();
        var buf = new ulong[8];
        Assert.Equal(Errno.EINVAL, vm.GetDirtyLog(32767, buf));
        Assert.Equal(Errno.EINVAL, vm.GetDirtyLog(1u << 16, buf));
        Assert.Equal(Errno.ENOENT, vm.GetDirtyLog(0, buf));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, 0, 0, Mb)));
        Assert.Equal(Errno.ENOENT, vm.GetDirtyLog(0, buf));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0, KvmMemFlags.LOG_DIRTY_PAGES, 0, Mb)));
        Assert.Equal(Errno.EFAULT, vm.GetDirtyLog(0, new ulong[2]));
        Assert.Equal(Errno.None, vm.GetDirtyLog(0, buf));
    }

    [Fact]
    public void Create_vcpu_errors()
    {
        var vm = NewVm();
        Assert.True(vm.CreateVcpu(0).IsOk);
        Assert.Equal(Errno.EEXIST, vm.CreateVcpu(0).Error);
        Assert.Equal(Errno.EINVAL, vm.CreateVcpu(512).Error);
        Assert.True(vm.CreateVcpu(511).IsOk);
    }

    [Fact]
    public void Create_guest_memfd_checks()
    {
        var vm = NewVm();
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(0, 0).Error);
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(0x1001, 0).Error);
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(Mb, 1UL << 8).Error);
        Assert.True(vm.CreateGuestMemfd(Mb, 0).IsOk);
    }

    [Fact]
    public void The_model_never_throws_on_junk_regions()
    {
        var vm = NewVm();
        var values = new ulong[] { 0, 1, 0xFFF, 0x1000, 1UL << 40, ulong.MaxValue, ulong.MaxValue - 0xFFF, 1UL << 48 };
        foreach (var slot in new uint[] { 0, 1, 32767, 0xFFFF, 0x10000, uint.MaxValue })
            foreach (var flags in new uint[] { 0, 1, 2, 3, 4, 8, uint.MaxValue })
                foreach (var a in values)
                    foreach (var b in values)
                    {
                        _ = vm.SetUserMemoryRegion2(R(slot, (KvmMemFlags)flags, a, b, a, b, (uint)b));
                        _ = vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(slot, flags, b, a, b));
                    }
    }

    [Fact]
    public void Rule31_guest_memfd_flag_cannot_be_cleared_on_an_existing_slot()
    {
        // Linux helper finding D4: the kernel refuses a GUEST_MEMFD toggle like a READONLY toggle.
        var vm = NewVm();
        var fd = (uint)vm.CreateGuestMemfd(4 * Mb, (ulong)GuestMemfdFlags.MMAP).Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(4, KvmMemFlags.GUEST_MEMFD, 0, 2 * Mb, Ua, 0, fd)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(4, 0, 0, 2 * Mb)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(4, 0, 0, 2 * Mb, Ua)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(4, 0, 64 * Mb, 2 * Mb)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(4, 0, 0, 0)));
    }

    [Fact]
    public void Rule33_a_delete_carrying_GUEST_MEMFD_does_not_look_at_the_fd()
    {
        // Linux helper finding D3: the bind runs for CREATE only; rules 21 and 25 still apply to the delete.
        var vm = NewVm();
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0x22, 0, 0xcc4000, Mb)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(0x22, KvmMemFlags.GUEST_MEMFD, 0xcc4000, 0, Ua, 0x10, uint.MaxValue)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(0x22, KvmMemFlags.GUEST_MEMFD, 0xcc4000, 0, Ua, 0x1000, uint.MaxValue)));
        Assert.Null(vm.Memslots().ById(0x22));
    }

    [Fact]
    public void Rule33_bind_offset_is_compared_as_a_signed_loff_t()
    {
        // Linux helper finding D2: offset + size wrapping negative passes kvm_gmem_bind's "> i_size" test.
        var vm = NewVm(profile: KvmProfile.X86_64);
        var fd = (uint)vm.CreateGuestMemfd(16 * 0x1000, 0).Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(R(1, KvmMemFlags.GUEST_MEMFD, 0x100000, 0x2000, 0x7f00_0020_0000, 0x7fff_ffff_ffff_f000, fd)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(2, KvmMemFlags.GUEST_MEMFD, 0x200000, 0x2000, 0x7f00_0020_0000, 0x8000_0000_0000_0000, fd)));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(R(2, KvmMemFlags.GUEST_MEMFD, 0x200000, 0x2000, 0x7f00_0020_0000, 15 * 0x1000, fd)));
    }

    [Fact]
    public void Create_guest_memfd_accepts_INIT_SHARED_without_MMAP()
    {
        // Linux helper finding D1: kvm_gmem_create only checks the flags against the supported set.
        var vm = NewVm(profile: KvmProfile.X86_64);
        Assert.True(vm.CreateGuestMemfd(0x2000, (ulong)GuestMemfdFlags.INIT_SHARED).IsOk);
        Assert.Equal(3, vm.CheckExtension(KvmCap.GUEST_MEMFD_FLAGS).Value);
        Assert.Equal(3, vm.Kvm.CheckExtension(KvmCap.GUEST_MEMFD_FLAGS).Value);
    }
}
