using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>Rules 4-7: the arm64 memslot preparation.</summary>
public class PrepareRuleTests
{
    [Fact]
    public void Rule04_slot_beyond_the_ipa_space_is_EFAULT()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.EFAULT, rig.AddSlot(0, (1UL << 40) - MiB, ram));
        Assert.Equal(Errno.None, rig.AddSlot(0, (1UL << 40) - 2 * MiB, ram));
        var big = rig.Kvm.CreateModelVm(48).Value;
        Assert.Equal(Errno.None, big.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 1UL << 40, 2 * MiB, ram.Start, 0, 0)));
    }

    [Fact]
    public void Rule04_does_not_apply_to_delete()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 0, 0, ram.Start, 0, 0)));
    }

    [Fact]
    public void Rule05_guest_memfd_slot_needs_an_mmapable_file()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var plain = (uint)rig.Vm.CreateGuestMemfd(2 * MiB, 0).Value;
        var mmapable = (uint)rig.Vm.CreateGuestMemfd(2 * MiB, (ulong)GuestMemfdFlags.MMAP).Value;
        Assert.Equal(Errno.EINVAL, rig.Vm.SetUserMemoryRegion2(new(0, (uint)KvmMemFlags.GUEST_MEMFD, 0, 2 * MiB, 0x7000_0000_0000, 0, plain)));
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(0, (uint)KvmMemFlags.GUEST_MEMFD, 0, 2 * MiB, 0x7000_0000_0000, 0, mmapable)));
        // The guest reads and writes the file's pages; the VMM sees them through an mmap of the file.
        var file = (GuestMemfdFile)rig.Vmm.GetFile((int)mmapable)!;
        var view = file.Mmap(rig.Vmm).Value;
        Assert.Equal(GuestAccessOutcome.Completed, rig.Write(0x1000, 0xABCD).Outcome);
        var buf = new byte[8];
        Assert.Equal(Errno.None, rig.Vmm.Mm.Read(view.Start + 0x1000, buf));
        Assert.Equal(0xABCDUL, BitConverter.ToUInt64(buf));
    }

    [Fact]
    public void Rule06_mte_vm_needs_VM_MTE_ALLOWED()
    {
        // "max" has FEAT_MTE2: anonymous memory is VM_MTE_ALLOWED, a device mapping is not.
        var rig = new Rig("max", "linux-6.17");
        var vm = rig.Kvm.CreateModelVm().Value;
        Assert.Equal(Errno.None, vm.EnableMte());
        var ram = rig.Anon(2 * MiB);
        Assert.True((ram.Flags & VmFlags.VM_MTE_ALLOWED) != 0);
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new(0, 0, 0, 2 * MiB, ram.Start, 0, 0)));
        var untagged = rig.Vmm.Mm.InsertVma(2 * MiB, ram.Flags & ~VmFlags.VM_MTE_ALLOWED, PgProt.Default, null, ram.Backing, "no-mte").Value;
        Assert.Equal(Errno.EINVAL, vm.SetUserMemoryRegion2(new(1, 0, 4 * MiB, 2 * MiB, untagged.Start, 0, 0)));
    }

    /// <summary>An MTE VM (KVM_CAP_ARM_MTE before its first vCPU) and that vCPU.</summary>
    private static (ModelKvmVm Vm, ModelKvmVcpu Vcpu) MteVm(Rig rig)
    {
        var vm = rig.Kvm.CreateModelVm().Value;
        Assert.Equal(Errno.None, vm.EnableMte());
        return (vm, vm.CreateModelVcpu(0).Value);
    }

    /// <summary>
    /// arch_calc_vm_flag_bits() checks MAP_ANONYMOUS (5.10-6.12) or MAP_ANONYMOUS|MAP_HUGETLB (6.13+): an anonymous
    /// MAP_HUGETLB mapping allows tags in every modelled release, so an MTE VM takes it as RAM (rule 6) and maps its
    /// huge pages as blocks.
    /// </summary>
    [Theory]
    [InlineData("linux-6.8")]
    [InlineData("linux-6.9")]
    [InlineData("linux-6.17")]
    [InlineData("proposal-memslot-flag")]
    [InlineData("proposal-module-param=on")]
    public void Rule06_mte_vm_over_anonymous_MAP_HUGETLB_is_accepted_in_every_design(string design)
    {
        var rig = new Rig("max", design);
        var (vm, vcpu) = MteVm(rig);
        var huge = Hugetlbfs.Mmap(rig.Vmm, 4 * MiB, anonymous: true).Value;
        Assert.True((huge.Flags & VmFlags.VM_MTE_ALLOWED) != 0);
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new(0, 0, GiB, 4 * MiB, huge.Start, 0, 0)));
        var w = vcpu.Access(GuestAccessRequest.Write(GiB + 0x200008, 0xF0, 0x7A9));
        Assert.Equal(GuestAccessOutcome.Completed, w.Outcome);
        Assert.Equal(2 * MiB, w.Leaf!.Value.Size);
        Assert.Equal(0x7A9UL, BitConverter.ToUInt64(vcpu.Access(GuestAccessRequest.Read(GiB + 0x200008, 0xF0)).Data));
    }

    /// <summary>
    /// A hugetlbfs file (or memfd MFD_HUGETLB, QEMU's memory-backend-file/-memfd) is mapped without MAP_ANONYMOUS:
    /// before 6.13 arch_calc_vm_flag_bits() leaves it without VM_MTE_ALLOWED and an MTE VM refuses the memslot
    /// (rule 6); 6.13 (25c17c4b55de "hugetlb: arm64: add mte support") adds is_file_hugepages(file).
    /// </summary>
    [Theory]
    [InlineData("linux-6.8", Errno.EINVAL)]
    [InlineData("linux-6.9", Errno.EINVAL)]
    [InlineData("linux-6.17", Errno.None)]
    [InlineData("proposal-memslot-flag", Errno.None)]
    [InlineData("proposal-module-param=on", Errno.None)]
    public void Rule06_mte_vm_over_a_hugetlbfs_file_needs_613(string design, Errno expected)
    {
        var rig = new Rig("max", design);
        var (vm, _) = MteVm(rig);
        var file = Hugetlbfs.Mmap(rig.Vmm, 4 * MiB).Value;
        Assert.Equal(expected == Errno.None, (file.Flags & VmFlags.VM_MTE_ALLOWED) != 0);
        Assert.Equal(expected, vm.SetUserMemoryRegion2(new(0, 0, GiB, 4 * MiB, file.Start, 0, 0)));
        // Without MTE in the VM, KVM does not look at the flag.
        Assert.Equal(Errno.None, rig.AddSlot(0, GiB, file));
    }

    /// <summary>
    /// The fault-time half of rule 6 (user_mem_abort's kvm_vma_mte_allowed()): a hugetlbfs file mapped with MAP_FIXED
    /// over part of an accepted MTE slot is caught at the guest's next access: EFAULT before 6.13, mapped from 6.13.
    /// </summary>
    [Theory]
    [InlineData("linux-6.9", GuestAccessOutcome.RunFailed)]
    [InlineData("linux-6.17", GuestAccessOutcome.Completed)]
    public void Rule06_hugetlbfs_file_mapped_over_an_mte_slot_fails_the_fault_before_613(string design, GuestAccessOutcome expected)
    {
        var rig = new Rig("max", design);
        var (vm, vcpu) = MteVm(rig);
        var ram = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB).Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new(0, 0, GiB, 4 * MiB, ram.Start, 0, 0)));
        _ = Hugetlbfs.Mmap(rig.Vmm, 2 * MiB, fixedAddress: ram.Start + 2 * MiB).Value;
        Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Read(GiB, 0xF0)).Outcome);
        var r = vcpu.Access(GuestAccessRequest.Read(GiB + 2 * MiB, 0xF0));
        Assert.Equal(expected, r.Outcome);
        if (expected == GuestAccessOutcome.RunFailed)
            Assert.Equal(Errno.EFAULT, r.RunError);
    }

    /// <summary>system_supports_mte() gates arch_calc_vm_flag_bits(): without MTE on the host no hugetlb VMA, anonymous or file, gets the flag.</summary>
    [Fact]
    public void Rule06_hugetlb_has_no_VM_MTE_ALLOWED_on_a_host_without_mte()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(VmFlags.VM_NONE, Hugetlbfs.Mmap(rig.Vmm, 2 * MiB, anonymous: true).Value.Flags & VmFlags.VM_MTE_ALLOWED);
        Assert.Equal(VmFlags.VM_NONE, Hugetlbfs.Mmap(rig.Vmm, 2 * MiB).Value.Flags & VmFlags.VM_MTE_ALLOWED);
    }

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) (arm.c, 6.12 and 7.3): EINVAL without MTE on the host or once a vCPU exists;
    /// memslots made before do not matter (recorded by the arm64 oracle under QEMU -M virt,mte=on).
    /// </summary>
    [Fact]
    public void Rule06_mte_can_be_enabled_after_memslots_but_not_after_vcpus_and_only_with_host_mte()
    {
        var noMte = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(0, noMte.Kvm.CheckExtension(KvmCap.ARM_MTE).Value);
        Assert.Equal(Errno.EINVAL, noMte.Kvm.CreateModelVm().Value.EnableMte());
        var rig = new Rig("max", "linux-6.17");
        Assert.Equal(1, rig.Kvm.CheckExtension(KvmCap.ARM_MTE).Value);
        var vm = rig.Kvm.CreateModelVm().Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new(0, 0, 0, 2 * MiB, rig.Anon(2 * MiB).Start, 0, 0)));
        Assert.Equal(Errno.None, vm.EnableMte());
        Assert.True(vm.HasMte);
        Assert.True(vm.CreateVcpu(0).IsOk);
        Assert.Equal(Errno.EINVAL, vm.EnableMte());
    }

    [Theory]
    [InlineData("linux-6.8")]
    [InlineData("linux-6.9")]
    [InlineData("linux-6.17")]
    [InlineData("proposal-memslot-flag")]
    [InlineData("proposal-module-param=on")]
    public void Rule06_dirty_logging_on_a_PFNMAP_vma_is_EINVAL_in_every_design(string design)
    {
        var rig = new Rig("neoverse-v2", design);
        var gpu = rig.AddGh200();
        var bar = gpu.MmapBar0(rig.Vmm).Value;
        Assert.Equal(Errno.EINVAL, rig.AddSlot(0, 0x1000_0000, bar, KvmMemFlags.LOG_DIRTY_PAGES));
        Assert.Equal(Errno.None, rig.AddSlot(0, 0x1000_0000, bar));
        // ... and turning it on later (FLAGS_ONLY).
        Assert.Equal(Errno.EINVAL, rig.AddSlot(0, 0x1000_0000, bar, KvmMemFlags.LOG_DIRTY_PAGES));
    }

    [Theory]
    [InlineData("neoverse-n1", Errno.EINVAL)]
    [InlineData("cortex-a72", Errno.EINVAL)]
    [InlineData("neoverse-v2", Errno.None)]
    public void Rule06_cacheable_PFNMAP_needs_FWB_and_DIC_on_617(string cpu, Errno expected)
    {
        var rig = new Rig(cpu, "linux-6.17");
        var use = rig.AddGh200().MmapUsemem(rig.Vmm).Value;
        Assert.Equal(expected, rig.AddSlot(0, 0x40_0000_0000, use));
    }

    [Fact]
    public void Rule06_cacheable_PFNMAP_of_RAM_is_refused_too_on_617_n1()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var devmem = DevMem.Mmap(rig.Vmm, rig.Host.Memory.Ram.Base + 512 * MiB, 2 * MiB).Value;
        Assert.True(devmem.IsCacheable);
        Assert.Equal(Errno.EINVAL, rig.AddSlot(0, 0, devmem));
    }

    [Fact]
    public void Rule06_holes_are_ignored_and_each_vma_in_the_range_is_checked()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var gpu = rig.AddGh200();
        // A slot over nothing is fine.
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(0, 0, 0, 4 * MiB, 0x1000_0000_0000, 0, 0)));
        // A slot covering anonymous memory, a hole, then a cacheable PFNMAP: refused for the last VMA.
        var ram = AnonymousMemory.Mmap(rig.Vmm, 2 * MiB, fixedAddress: 0x2000_0000_0000).Value;
        _ = gpu.MmapUsemem(rig.Vmm, 0, 2 * MiB, fixedAddress: 0x2000_0040_0000).Value;
        Assert.Equal(Errno.EINVAL, rig.Vm.SetUserMemoryRegion2(new(1, 0, 1UL << 30, 8 * MiB, ram.Start, 0, 0)));
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(1, 0, 1UL << 30, 4 * MiB, ram.Start, 0, 0)));
    }

    [Fact]
    public void Rule07_cacheable_MIXEDMAP_is_not_checked_at_memslot_time()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var dev = new MixedMapDevice(rig.Host, "dax0", 64 * MiB);
        var vma = dev.Mmap(rig.Vmm).Value;
        Assert.True(vma.IsCacheable);
        Assert.Equal(Errno.None, rig.AddSlot(0, 1UL << 32, vma));
    }
}
