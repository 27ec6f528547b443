using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux.Tests;

/// <summary>The backend against the real /dev/kvm: answers that every KVM gives (docs/rules.md, rules 19-33).</summary>
public class RealKvmTests
{
    private const ulong Page = 4096;

    [KvmFact]
    public void Api_version_is_12_and_user_memory_is_supported()
    {
        using var kvm = RealKvm.Open();
        Assert.Equal(12, kvm.GetApiVersion());
        Assert.Equal(1, kvm.CheckExtension(KvmCap.USER_MEMORY).Value);
        Assert.True(kvm.CheckExtension(KvmCap.NR_MEMSLOTS).Value > 0);
        Assert.Equal(kvm.Host.Arch, kvm.Arch);
    }

    [KvmFact]
    public void Unknown_capability_reads_0()
    {
        using var kvm = RealKvm.Open();
        Assert.Equal(0, kvm.CheckExtension(100_000).Value);
    }

    [KvmFact]
    public void Cap_243_is_EINVAL_on_the_arm64_system_fd_and_0_or_1_on_a_vm_fd()
    {
        using var kvm = RealKvm.Open();
        using var vm = kvm.CreateVm().Value;
        var sys = kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var perVm = vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        if (kvm.Arch == KvmArch.Arm64 && ParseRelease(kvm.Host.Release) >= new Version(6, 17))
        {
            Assert.Equal(Errno.EINVAL, sys.Error); // rule 2
            Assert.InRange(perVm.Value, 0, 1);
        }
        else
        {
            Assert.Equal(0, sys.Value); // x86, or arm64 before 6.17: an unknown capability reads 0 (rule 2)
            Assert.Equal(0, perVm.Value);
        }
    }

    [KvmFact]
    public void Memslot_create_overlap_move_delete_follow_rules_29_to_32()
    {
        using var kvm = RealKvm.Open();
        using var mem = AnonymousMemory.Map(8 * Page).Value;
        using var vm = kvm.CreateVm().Value;
        var a = new KvmUserspaceMemoryRegion(0, 0, 0x10_0000, 4 * Page, mem.Address);
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(a));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(a)); // rule 31: no change
        Assert.Equal(Errno.EEXIST, vm.SetUserMemoryRegion(a with { Slot = 1, UserspaceAddr = mem.Address + 4 * Page })); // rule 32
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(a with { MemorySize = 8 * Page })); // rule 31: resize
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(a with { Flags = (uint)KvmMemFlags.READONLY })); // rule 31
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(a with { GuestPhysAddr = 0x20_0000 })); // rule 31: move
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(a with { MemorySize = 0 })); // rule 29: delete
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(a with { MemorySize = 0 })); // rule 29: absent
    }

    [KvmFact]
    public void Misaligned_fields_and_v1_guest_memfd_flag_are_EINVAL()
    {
        using var kvm = RealKvm.Open();
        using var vm = kvm.CreateVm().Value;
        var ok = new KvmUserspaceMemoryRegion(0, 0, 0x10_0000, Page, 0x7f00_0000_0000);
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(ok with { Flags = (uint)KvmMemFlags.GUEST_MEMFD })); // rule 19
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(ok with { MemorySize = Page + 1 })); // rule 22
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(ok with { GuestPhysAddr = 0x10_0800 })); // rule 23
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(ok with { UserspaceAddr = 0x7f00_0000_0010 })); // rule 24
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion(ok with { Slot = 0x7fff })); // rule 20
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(ok));
    }

    [KvmFact]
    public void Guest_memfd_binding_checks_fd_owner_and_range_rule_33()
    {
        using var kvm = RealKvm.Open();
        using var vm = kvm.CreateVm().Value;
        if (vm.CheckExtension(KvmCap.GUEST_MEMFD).Value == 0)
        {
            Assert.False(vm.CreateGuestMemfd(16 * Page, 0).IsOk); // no guest_memfd on this kernel: creation fails
            return;
        }
        using var other = kvm.CreateVm().Value;
        var gmem = vm.CreateGuestMemfd(16 * Page, 0).Value;
        var othersGmem = other.CreateGuestMemfd(16 * Page, 0).Value;
        var r = new KvmUserspaceMemoryRegion2(0, (uint)KvmMemFlags.GUEST_MEMFD, 0x10_0000, 4 * Page, 0x7f00_0000_0000, 0, (uint)gmem);
        Assert.Equal(Errno.EBADF, vm.SetUserMemoryRegion2(r with { GuestMemfd = uint.MaxValue }));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(r with { GuestMemfd = (uint)othersGmem }));
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(r with { GuestMemfdOffset = 13 * Page })); // past the end
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(r with { GuestMemfdOffset = 0x800 })); // rule 25
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(r with { GuestMemfdOffset = 12 * Page })); // up to the end
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(r with { Slot = 1, GuestPhysAddr = 0x20_0000, GuestMemfdOffset = 14 * Page })); // already bound
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(Page + 1, 0).Error);
        Assert.Equal(Errno.EINVAL, vm.CreateGuestMemfd(0, 0).Error);
    }

    [KvmFact]
    public void Dirty_log_of_a_logging_slot_reads_clean_and_a_plain_slot_is_ENOENT()
    {
        using var kvm = RealKvm.Open();
        using var mem = AnonymousMemory.Map(64 * Page).Value;
        using var vm = kvm.CreateVm().Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(0, (uint)KvmMemFlags.LOG_DIRTY_PAGES, 0, 64 * Page, mem.Address)));
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(1, 0, 0x100_0000, 64 * Page, mem.Address)));
        var bitmap = new ulong[1];
        bitmap[0] = ulong.MaxValue;
        Assert.Equal(Errno.None, vm.GetDirtyLog(0, bitmap));
        Assert.Equal(0UL, bitmap[0]); // nothing ran, nothing is dirty
        Assert.Equal(Errno.ENOENT, vm.GetDirtyLog(1, bitmap));
        Assert.Equal(Errno.ENOENT, vm.GetDirtyLog(5, bitmap));
    }

    [KvmFact]
    public void Vcpu_can_be_created_once_per_id_and_run_answers_the_same_way_twice()
    {
        using var kvm = RealKvm.Open();
        using var vm = kvm.CreateVm().Value;
        var vcpu = vm.CreateVcpu(0).Value;
        Assert.Equal(0u, vcpu.Id);
        Assert.Equal(Errno.EEXIST, vm.CreateVcpu(0).Error);
        var first = vcpu.Run();
        if (kvm.Arch == KvmArch.Arm64)
            Assert.Equal(Errno.ENOEXEC, first.Error); // no KVM_ARM_VCPU_INIT
        // x86: registers are at reset and there is no memory; the kernel decides (a VMX/SVM host exits with an
        // internal error or a shutdown; the shadow-MMU PVM host of docs/host-profile.md fails KVM_RUN with ENOSPC).
        Assert.Equal(first, vcpu.Run());
        vcpu.Dispose();
        Assert.Throws<ObjectDisposedException>(() => vcpu.Run());
    }

    [KvmFact]
    public void Anonymous_memory_is_writable_and_page_aligned()
    {
        using var mem = AnonymousMemory.Map(2 * Page).Value;
        Assert.Equal(0UL, mem.Address % Page);
        mem.AsSpan()[4097] = 42;
        Assert.Equal(42, mem.AsSpan()[4097]);
        Assert.Equal(Errno.EINVAL, AnonymousMemory.Map(0).Error);
    }

    [KvmFact]
    public void Probe_reports_the_caps_on_both_fds_and_the_measured_limits()
    {
        using var kvm = RealKvm.Open();
        var p = KvmProbe.Probe(kvm);
        Assert.Equal(12, p.ApiVersion);
        Assert.Equal(KvmProbe.Capabilities.Count, p.Caps.Count);
        Assert.All(p.Caps, c => Assert.NotNull(c.Vm));
        var nr = p.Cap(KvmCap.NR_MEMSLOTS)!.Value.Value;
        Assert.Equal(kvm.CheckExtension(KvmCap.NR_MEMSLOTS).Value, nr);
        Assert.NotNull(p.Memslots);
        Assert.Equal(Errno.None, p.Memslots!.LastUserSlotError);
        Assert.Equal(Errno.EINVAL, p.Memslots.FirstBadSlotError); // rule 20
        Assert.InRange(p.Memslots.MaxGpaBits, 32, 57);
        Assert.Equal(kvm.Arch == KvmArch.Arm64 ? Errno.EFAULT : Errno.EINVAL, p.Memslots.BeyondGpaError); // rule 4 / x86 max gfn
    }

    private static Version ParseRelease(string release)
    {
        var parts = release.Split('.', '-');
        return new Version(int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Counts this process's descriptors, so it runs alone (no other test may open fds meanwhile).</summary>
[CollectionDefinition(nameof(FdCounting), DisableParallelization = true)]
public sealed class FdCountingCollection;

[Collection(nameof(FdCounting))]
public class FdCounting
{
    private const ulong Page = 4096;

    [KvmFact]
    public void Disposing_closes_every_descriptor()
    {
        int Open() => Directory.GetFiles("/proc/self/fd").Length;
        var before = Open();
        using (var kvm = RealKvm.Open())
        {
            var vm = kvm.CreateVm().Value;
            if (kvm.CheckExtension(KvmCap.GUEST_MEMFD).Value > 0)
                vm.CreateGuestMemfd(Page, 0);
            var vcpu = vm.CreateVcpu(0).Value;
            Assert.True(Open() >= before + 3);
            vcpu.Dispose();
            vm.Dispose();
        }
        Assert.Equal(before, Open());
    }
}
