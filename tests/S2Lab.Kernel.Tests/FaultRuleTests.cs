using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>Rules 8-18: the stage-2 fault.</summary>
public class FaultRuleTests
{
    private const ulong UseIpa = 0x40_0000_0000;
    private const ulong ResIpa = 0x80_0000_0000;
    private const ulong BarIpa = 0x10_0000_0000;

    private static (Rig Rig, NvGraceGpu Gpu) Gh200(string cpu, string design)
    {
        var rig = new Rig(cpu, design);
        var gpu = rig.AddGh200();
        return (rig, gpu);
    }

    [Fact]
    public void Rule08_cacheable_special_without_FWB_DIC_fails_the_fault_with_EFAULT()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var dev = new MixedMapDevice(rig.Host, "dax0", 64 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 1UL << 32, dev.Mmap(rig.Vmm).Value));
        var r = rig.Read(1UL << 32);
        Assert.Equal(GuestAccessOutcome.RunFailed, r.Outcome);
        Assert.Equal(Errno.EFAULT, r.RunError);
        Assert.Equal(8, r.Faults.Single().Decision!.Value.Rule);
        Assert.Equal(8, rig.LastFaultRule(DecisionStage.Design));
        Assert.Equal(8, rig.LastFaultRule(DecisionStage.Exit)); // KVM_RUN fails for rule 8's reason
        Assert.Null(rig.Vm.Stage2.GetLeaf(1UL << 32));
        // Through KVM_RUN: the run fails with EFAULT.
        rig.Vcpu.Enqueue(GuestAccessRequest.Read(1UL << 32, 0xFF));
        Assert.Equal(Errno.EFAULT, rig.Vcpu.Run().Error);
    }

    /// <summary>
    /// hva_to_pfn() reaches a page without struct page only through hva_to_pfn_remapped(), which it tries for VM_IO or
    /// VM_PFNMAP VMAs alone: a VM_MIXEDMAP VMA without VM_IO over HBM-like memory fails with EFAULT before any design
    /// decides a type, even where 6.9-6.16 would map it Device. With VM_IO the same pages are mapped. A DAX-like device
    /// (ZONE_DEVICE, struct pages) needs no VM_IO.
    /// </summary>
    [Theory]
    [InlineData("linux-6.9")]
    [InlineData("linux-6.17")]
    public void Rule08_mixedmap_without_VM_IO_over_pages_without_struct_page_fails_in_hva_to_pfn(string design)
    {
        var rig = new Rig("neoverse-n1", design);
        var gpu = new NvGraceGpu(rig.Host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 4 * GiB, Bar0Size: 16 * MiB,
            UsememMapping: NvGraceUsememMapping.Mixedmap));
        var withIo = gpu.MmapUsemem(rig.Vmm, 0, 2 * MiB).Value;
        Assert.True((withIo.Flags & VmFlags.VM_IO) != 0);
        var noIo = rig.Vmm.Mm.InsertVma(2 * MiB, withIo.Flags & ~VmFlags.VM_IO, withIo.PageProt, withIo.PgOff, withIo.Backing, "no VM_IO").Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, noIo));
        var r = rig.Read(UseIpa);
        Assert.Equal((GuestAccessOutcome.RunFailed, Errno.EFAULT), (r.Outcome, r.RunError));
        Assert.Null(r.Faults.Single().Decision);
        Assert.Empty(rig.FaultRules(DecisionStage.Design)); // hva_to_pfn fails before any design decides
        Assert.Equal(Errno.None, rig.AddSlot(2, UseIpa + GiB, withIo));
        // The design decides: 6.9 demotes the cacheable VMA to Device, 6.17 fails without FWB && DIC (rule 8).
        var viaIo = rig.Read(UseIpa + GiB);
        Assert.Equal(design == "linux-6.9" ? GuestAccessOutcome.Completed : GuestAccessOutcome.RunFailed, viaIo.Outcome);
        Assert.NotNull(viaIo.Faults.Single().Decision);
        var dax = new MixedMapDevice(rig.Host, "dax0", 2 * MiB);
        Assert.True(dax.Region.HasStructPage);
    }

    [Fact]
    public void Rule09_cacheable_special_with_FWB_DIC_is_Normal_FWB_encoding_6_and_executable()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value));
        var w = rig.Write(UseIpa + 0x2000, 99);
        Assert.Equal(GuestAccessOutcome.Completed, w.Outcome);
        Assert.Equal(KvmS2MemAttr.MT_S2_FWB_NORMAL, w.Leaf!.Value.MemAttr);
        Assert.Equal(9, w.Faults.Single().Decision!.Value.Rule);
        Assert.Equal(9, rig.LastFaultRule(DecisionStage.Design));
        rig.AssertNoHazard(rig.LastAccessed);
        var x = rig.Exec(UseIpa + 0x2000);
        Assert.Equal(GuestAccessOutcome.Completed, x.Outcome);
        Assert.True(x.Effective!.Value.IsCacheable);
    }

    [Theory]
    [InlineData("neoverse-v2", KvmS2MemAttr.MT_S2_FWB_NORMAL_NC, KvmS2MemAttr.MT_S2_FWB_DEVICE_nGnRE)]
    [InlineData("neoverse-n1", KvmS2MemAttr.MT_S2_NORMAL_NC, KvmS2MemAttr.MT_S2_DEVICE_nGnRE)]
    public void Rule10_noncacheable_special_is_NormalNC_with_ALLOW_ANY_UNCACHED_else_Device(string cpu, byte nc, byte dev)
    {
        var (rig, gpu) = Gh200(cpu, "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(2, ResIpa, gpu.MmapResmem(rig.Vmm).Value));
        Assert.Equal(Errno.None, rig.AddSlot(3, BarIpa, gpu.MmapBar0(rig.Vmm).Value));
        var rr = rig.Read(ResIpa, 0x44);
        Assert.Equal(nc, rr.Leaf!.Value.MemAttr);
        Assert.Equal(10, rr.Faults.Single().Decision!.Value.Rule);
        Assert.Equal(10, rig.LastFaultRule(DecisionStage.Design));
        // A BAR mapping without VM_ALLOW_ANY_UNCACHED is Device.
        var plainBar = rig.Vmm.Mm.InsertVma(2 * MiB, VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_SHARED,
            new PgProt(MtIndex.MT_DEVICE_nGnRE), gpu.Pci.Bars[0].Base >> 12, new LinearPfnBacking("bar"), "bar-no-wc").Value;
        Assert.Equal(Errno.None, rig.AddSlot(4, 0x20_0000_0000, plainBar));
        Assert.Equal(dev, rig.Read(0x20_0000_0000, 0x04).Leaf!.Value.MemAttr);
        Assert.Equal(nc, rig.Read(BarIpa, 0x04).Leaf!.Value.MemAttr);
    }

    [Fact]
    public void Rule11_pfnmap_over_map_memory_is_Normal_whatever_the_pgprot()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        // /dev/mem O_SYNC over RAM: write-combine pgprot, accepted at memslot time (not cacheable), Normal at stage 2.
        var vma = DevMem.Mmap(rig.Vmm, rig.Host.Memory.Ram.Base + GiB, 2 * MiB, oSync: true).Value;
        Assert.False(vma.IsCacheable);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, vma));
        var r = rig.Read(0x1000);
        Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.KvmType);
        Assert.Equal(11, r.Faults.Single().Decision!.Value.Rule);
        Assert.Equal(11, rig.LastFaultRule(DecisionStage.Design));
    }

    [Fact]
    public void Rule12_exec_on_noncacheable_injects_an_abort_and_the_vcpu_goes_on()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(2, ResIpa, gpu.MmapResmem(rig.Vmm).Value));
        rig.Vcpu.Enqueue(GuestAccessRequest.Exec(ResIpa, 0x44), GuestAccessRequest.Read(ResIpa, 0x44));
        var run = rig.Vcpu.Run();
        Assert.True(run.IsOk);
        Assert.Equal(KvmExitReason.Hlt, run.Value.Reason);
        Assert.Equal(GuestAccessOutcome.AbortInjected, rig.Vcpu.History[0].Outcome);
        Assert.Equal(Errno.ENOEXEC, rig.Vcpu.History[0].Faults.Single().Error);
        Assert.Equal(12, rig.FaultRules(DecisionStage.Exit).Single()); // kvm_inject_sea_iabt for rule 12
        Assert.Equal(GuestAccessOutcome.Completed, rig.Vcpu.History[1].Outcome);
        Assert.False(rig.Vcpu.History[1].Leaf!.Value.Executable);
    }

    [Fact]
    public void Rule13_X_is_pregranted_to_Normal_with_DIC_only()
    {
        var dic = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, dic.AddSlot(0, 0, dic.Anon(2 * MiB)));
        Assert.True(dic.Read(0).Leaf!.Value.Executable);

        var noDic = new Rig("cortex-a72", "linux-6.17");
        Assert.Equal(Errno.None, noDic.AddSlot(0, 0, noDic.Anon(2 * MiB)));
        Assert.False(noDic.Read(0).Leaf!.Value.Executable);
        var x = noDic.Exec(0);
        Assert.Equal(GuestAccessOutcome.Completed, x.Outcome);
        Assert.True(x.Faults.Single().IsPermissionFault);
        Assert.True(x.Leaf!.Value.Executable);
        Assert.Equal(13, noDic.LastFaultRule(DecisionStage.Permissions));
        // Without DIC the I-cache invalidation is needed (RAM has a kernel VA, so it is possible).
        Assert.Contains(x.Faults.Single().Cmos, c => c.Kind == CacheOp.IcIvau && c.Needed && c.Possible);
    }

    [Fact]
    public void Rule13_FWB_and_DIC_leave_no_CMO_to_do_and_the_explanation_says_why()
    {
        // FWB skips the D-cache clean of a new cacheable leaf, DIC makes the I-cache invalidate of an executable one a no-op.
        var unobserved = new Rig("neoverse-v2", "linux-6.17");
        unobserved.Kvm.Observer = null;
        Assert.Equal(Errno.None, unobserved.AddSlot(0, 0, unobserved.Anon(2 * MiB)));
        Assert.Empty(unobserved.Read(0).Faults.Single().Cmos);

        var observed = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, observed.AddSlot(0, 0, observed.Anon(2 * MiB)));
        var r = observed.Read(0);
        Assert.Empty(r.Faults.Single().Cmos);
        // The events say why: both CMOs were considered for the new cacheable, executable (DIC) leaf, and neither is needed.
        var considered = observed.Events.Events.OfType<CmoRequired>().ToList();
        Assert.Contains(considered, c => c is { Op: CacheOp.DcCivac, Needed: false, Reason: "FWB: skipped" });
        Assert.Contains(considered, c => c is { Op: CacheOp.IcIvau, Needed: false, Reason: "DIC: a no-op" });
        Assert.DoesNotContain(considered, c => c.Needed);
    }

    [Fact]
    public void Rule13_dirty_logging_maps_read_faults_read_only_and_marks_written_pages()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(4 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram, KvmMemFlags.LOG_DIRTY_PAGES));
        var r = rig.Read(0x3000);
        Assert.False(r.Leaf!.Value.Writable);
        Assert.Equal(PageSizes.PAGE_SIZE, r.Leaf!.Value.Size); // logging forces PAGE_SIZE
        var w = rig.Write(0x3000, 5);
        Assert.True(w.Faults.Single().IsPermissionFault);
        Assert.Equal(13, rig.LastFaultRule(DecisionStage.Permissions));
        Assert.True(w.Leaf!.Value.Writable);
        var bits = new ulong[16];
        Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
        Assert.Equal(1UL << 3, bits[0]);
        // GET_DIRTY_LOG cleared and write-protected: the next write faults and dirties again.
        Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
        Assert.Equal(0UL, bits[0]);
        var again = rig.Write(0x3000, 6);
        Assert.Single(again.Faults);
        Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
        Assert.Equal(1UL << 3, bits[0]);
    }

    [Fact]
    public void Rule13_read_only_slot_maps_read_only_and_writes_exit_to_mmio()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram, KvmMemFlags.READONLY));
        Assert.False(rig.Read(0).Leaf!.Value.Writable);
        var w = rig.Write(0x10, 1);
        Assert.Equal(GuestAccessOutcome.MmioExit, w.Outcome);
        Assert.Equal(new KvmExit(KvmExitReason.Mmio, 0x10, 8, true), w.Exit);
    }

    [Fact]
    public void Rule14_page_table_layer_rejects_device_nc_exec_combinations()
    {
        Assert.Null(Stage2TableAdapter.MemAttrFor(KvmPgtableProt.R | KvmPgtableProt.DEVICE | KvmPgtableProt.NORMAL_NC, true));
        Assert.Null(Stage2TableAdapter.MemAttrFor(KvmPgtableProt.R | KvmPgtableProt.DEVICE | KvmPgtableProt.X, true));
        Assert.Null(Stage2TableAdapter.MemAttrFor(KvmPgtableProt.R | KvmPgtableProt.NORMAL_NC | KvmPgtableProt.X, false));
        Assert.Equal((byte)6, Stage2TableAdapter.MemAttrFor(KvmPgtableProt.RWX, true));
        Assert.Equal((byte)0xF, Stage2TableAdapter.MemAttrFor(KvmPgtableProt.RWX, false));
    }

    /// <summary>
    /// Rule 15 as Linux 6.12.113+ and 7.x do it (recorded by the arm64 oracle, tests/S2Lab.Lab.Tests/Arm64Oracle): a
    /// VM_PFNMAP VMA takes the host's stage-1 leaf size, which transparent_hugepage_adjust() caps at PMD_SIZE. usemem's
    /// huge_fault handler maps a PUD leaf where gpa, hva and pa line up mod 1 GiB, yet stage 2 gets a PMD block.
    /// </summary>
    [Theory]
    [InlineData(0x40_0000_0000UL, 0UL, 2UL << 20)] // congruent mod 1G: a PUD leaf in the host, a PMD block at stage 2
    [InlineData(0x40_0020_0000UL, 0UL, 2UL << 20)] // congruent mod 2M only: PMD
    [InlineData(0x40_0000_1000UL, 0UL, 4096UL)] // not even mod 2M: PAGE
    public void Rule15_16_pfnmap_mapping_size_is_the_host_leaf_capped_at_pmd_within_memslot_alignment(ulong gpa, ulong uaOffset, ulong expected)
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.True(PageSizes.IsAligned(use.Start, GiB));
        Assert.Equal(GiB, use.Backing.Lookup(use, use.Start + GiB + 0x5000)!.Value.MappingSize);
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(1, 0, gpa, 2 * GiB, use.Start + uaOffset, 0, 0)));
        var r = rig.Read(gpa + GiB + 0x5000);
        Assert.Equal(expected, r.Leaf!.Value.Size);
        // A block is sized from the host leaf (rule 15); the page is what is left when the memslot cannot hold the
        // host's block (rule 16).
        Assert.Equal(expected > PageSizes.PAGE_SIZE ? 15 : 16, rig.LastFaultRule(DecisionStage.MappingSize));
        Assert.Equal(use.LinearPa(use.Start + uaOffset + GiB + 0x5000), r.HostPhysAddr);
    }

    [Fact]
    public void Rule15_hva_not_congruent_with_pa_gives_pages()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var use = gpu.MmapUsemem(rig.Vmm, 0, 8 * MiB, fixedAddress: 0x5000_0000_1000).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa + 0x1000, use));
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Read(UseIpa + 0x20_0000).Leaf!.Value.Size);
    }

    /// <summary>
    /// The driver's huge fault inserts a PMD leaf only when the whole block lies inside the VMA (is_aligned_for_order()),
    /// so a slot over a 3 MiB usemem mapping gets a block for the first 2 MiB and pages for the tail: nothing past the
    /// VMA's pfns is mapped.
    /// </summary>
    [Fact]
    public void Rule15_a_block_never_reaches_past_the_vma()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var use = gpu.MmapUsemem(rig.Vmm, 0, 3 * MiB, fixedAddress: 0x5000_0000_0000).Value;
        // A 4 MiB slot over the 3 MiB VMA and the hole after it (holes are not an error at memslot time, rule 6).
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(1, 0, UseIpa, 4 * MiB, use.Start, 0, 0)));
        Assert.Equal(2 * MiB, rig.Read(UseIpa).Leaf!.Value.Size);
        var tail = rig.Read(UseIpa + 2 * MiB).Leaf!.Value;
        Assert.Equal(PageSizes.PAGE_SIZE, tail.Size);
        Assert.Equal(use.LinearPa(use.Start + 2 * MiB), tail.Pa);
    }

    /// <summary>
    /// remap_pfn_range() (here /dev/mem over device memory) maps the host with pages, so stage 2 maps pages too, even
    /// where pa, hva and gpa line up for a block: what Linux 7.3 and 6.12 did under the oracle with a 2 MiB aligned
    /// VM_PFNMAP of carved RAM.
    /// </summary>
    [Fact]
    public void Rule15_remap_pfn_range_vma_maps_pages_even_when_aligned_for_a_block()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var dev = DevMem.Mmap(rig.Vmm, gpu.Usemem.Base, 4 * MiB, fixedAddress: 0x5000_0000_0000).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, dev));
        var leaf = rig.Read(UseIpa + 0x1000).Leaf!.Value;
        Assert.Equal(PageSizes.PAGE_SIZE, leaf.Size);
        Assert.Equal(KvmS2MemType.DeviceNGnRE, leaf.KvmType); // /dev/mem outside map memory: Device pgprot (rule 10)
    }

    [Fact]
    public void Rule16_block_must_lie_inside_the_memslot()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        // A 3 MiB slot: the first 2 MiB can be a PMD block, the last MiB only pages.
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(1, 0, UseIpa, 3 * MiB, use.Start, 0, 0)));
        Assert.Equal(2 * MiB, rig.Read(UseIpa).Leaf!.Value.Size);
        Assert.Equal(15, rig.LastFaultRule(DecisionStage.MappingSize)); // the block: the host's leaf
        rig.Events.Clear();
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Read(UseIpa + 2 * MiB).Leaf!.Value.Size);
        // The tail outside a whole block: the host maps it with a PUD leaf, the memslot holds only a page.
        Assert.Equal(16, rig.FaultRules(DecisionStage.MappingSize).Single());
    }

    [Fact]
    public void Rule16_thp_and_hugetlb_give_blocks_for_ram()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(4 * MiB)));
        Assert.Equal(2 * MiB, rig.Write(0x1234 & ~7UL, 1).Leaf!.Value.Size);
        var noThp = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB, thp: false).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, 64 * MiB, noThp));
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Read(64 * MiB).Leaf!.Value.Size);
        var huge = Hugetlbfs.Mmap(rig.Vmm, GiB, PageSizes.PUD_SIZE).Value;
        Assert.Equal(Errno.None, rig.AddSlot(2, GiB, huge));
        Assert.Equal(GiB, rig.Read(GiB + 0x3000).Leaf!.Value.Size);
    }

    [Fact]
    public void Rule15_contiguous_hugetlb_sizes_map_as_pmd_blocks_and_forced_pages()
    {
        // user_mem_abort(): CONT_PMD_SHIFT becomes PMD_SHIFT, CONT_PTE_SHIFT becomes PAGE_SHIFT with force_pte.
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var cont64k = Hugetlbfs.Mmap(rig.Vmm, 2 * MiB, PageSizes.CONT_PTE_SIZE).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, cont64k));
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Write(0x10000, 1).Leaf!.Value.Size);
        var cont32m = Hugetlbfs.Mmap(rig.Vmm, 32 * MiB, PageSizes.CONT_PMD_SIZE).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, GiB, cont32m));
        var leaf = rig.Write(GiB + 0x1234 * 8, 1).Leaf!.Value;
        Assert.Equal((2 * MiB, 2), (leaf.Size, leaf.Level));
        // A power of two arm64 has no hugetlb size for: EINVAL (no hstate).
        Assert.Equal(Errno.EINVAL, Hugetlbfs.Mmap(rig.Vmm, 16 * MiB, 16 * MiB).Error);
    }

    /// <summary>
    /// Rule 17: only dirty logging forces a page. A non-cacheable VM_MIXEDMAP page stays a page because the driver maps
    /// the host with pages (rule 15), not because it is non-cacheable; a dirty-logged write to THP-backed RAM maps one
    /// page, and that decision cites rule 17.
    /// </summary>
    [Fact]
    public void Rule17_only_dirty_logging_forces_a_page_and_the_decision_cites_it()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var dev = new MixedMapDevice(rig.Host, "wc0", 64 * MiB, MtIndex.MT_NORMAL_NC);
        Assert.Equal(Errno.None, rig.AddSlot(0, 1UL << 32, dev.Mmap(rig.Vmm).Value));
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Read(1UL << 32, 0x44).Leaf!.Value.Size);
        Assert.Equal(15, rig.LastFaultRule(DecisionStage.MappingSize)); // the host's page leaf, not rule 17
        var ram = rig.Anon(4 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(1, 0, ram, KvmMemFlags.LOG_DIRTY_PAGES));
        rig.Events.Clear();
        Assert.Equal(PageSizes.PAGE_SIZE, rig.Write(0, 1).Leaf!.Value.Size);
        Assert.Equal(17, rig.FaultRules(DecisionStage.MappingSize).Single()); // dirty logging forces the page
        // The same RAM without logging is a THP block.
        Assert.Equal(Errno.None, rig.AddSlot(1, 0, ram));
        Assert.Equal(2 * MiB, rig.Read(2 * MiB).Leaf!.Value.Size);
    }

    /// <summary>
    /// Rule 15's host-leaf step (transparent_hugepage_adjust) on THP-backed RAM: the step that promotes the page to a
    /// PMD block and the final size both cite rule 15, the rule that says where the size comes from.
    /// </summary>
    [Fact]
    public void Rule15_a_THP_block_cites_the_host_leaf_step()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(4 * MiB)));
        Assert.Equal(2 * MiB, rig.Read(0x3000).Leaf!.Value.Size);
        var size = rig.Events.Events.OfType<FaultDecided>().Where(e => e.Stage == DecisionStage.MappingSize).ToList();
        Assert.Equal([15, 15], size.Select(e => e.Rule));
        Assert.StartsWith("transparent_hugepage_adjust", size[0].Reason, StringComparison.Ordinal);
    }

    /// <summary>
    /// A VM_PFNMAP block sized from the host leaf: usemem, which nvgrace-gpu's huge_fault maps with a PUD leaf, gets a
    /// PMD block at stage 2 through the host-leaf step, cited as rule 15 (not rule 16, which only steps down).
    /// </summary>
    [Fact]
    public void Rule15_a_VM_PFNMAP_block_sized_from_the_host_leaf_cites_rule_15()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.True((use.Flags & VmFlags.VM_PFNMAP) != 0);
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, use));
        var r = rig.Read(UseIpa + 0x5000);
        Assert.Equal((2 * MiB, KvmS2MemType.Normal), (r.Leaf!.Value.Size, r.Leaf!.Value.KvmType));
        Assert.Equal([15, 15], rig.FaultRules(DecisionStage.MappingSize));
    }

    /// <summary>
    /// A non-cacheable device page and a non-cacheable device block: /dev/mem (remap_pfn_range, pages) gives a Device
    /// page and a vfio-pci BAR (huge_fault, PMD leaves) a Device block. Both sizes come from the host leaf (rule 15);
    /// neither cites rule 17, since being non-cacheable forces nothing in 6.12.113+ and 7.x.
    /// </summary>
    [Fact]
    public void Rule15_a_noncacheable_device_page_cites_the_host_leaf_not_rule_17()
    {
        var (rig, gpu) = Gh200("neoverse-v2", "linux-6.17");
        var dev = DevMem.Mmap(rig.Vmm, gpu.Usemem.Base, 4 * MiB, fixedAddress: 0x5000_0000_0000).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, dev));
        var page = rig.Read(UseIpa + 0x1000).Leaf!.Value;
        Assert.Equal((PageSizes.PAGE_SIZE, KvmS2MemType.DeviceNGnRE), (page.Size, page.KvmType));
        Assert.Equal(15, rig.FaultRules(DecisionStage.MappingSize).Single());

        var bar = new VfioPciDevice(rig.Host, "0000:02:00.0", 16 * MiB).MmapBar(rig.Vmm, 0).Value;
        Assert.Equal(Errno.None, rig.AddSlot(2, BarIpa, bar));
        rig.Events.Clear();
        var block = rig.Read(BarIpa + 0x1000, 0x44).Leaf!.Value;
        Assert.Equal((2 * MiB, KvmS2MemType.NormalNc), (block.Size, block.KvmType));
        Assert.Equal([15, 15], rig.FaultRules(DecisionStage.MappingSize));
    }

    /// <summary>
    /// Hugetlb sizes: a page size the memslot holds is the host's (rule 15); a 1 GiB page in a slot congruent only mod
    /// 2 MiB steps down to a PMD block, and one congruent with nothing to forced pages, both rule 16's step.
    /// </summary>
    [Theory]
    [InlineData(0x40_0000_0000UL, 1UL << 30, 15)]
    [InlineData(0x40_0020_0000UL, 2UL << 20, 16)]
    [InlineData(0x40_0000_1000UL, 4096UL, 16)]
    public void Rule16_hugetlb_step_down_cites_rule_16(ulong gpa, ulong expected, int rule)
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var huge = Hugetlbfs.Mmap(rig.Vmm, GiB, PageSizes.PUD_SIZE).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, gpa, huge));
        Assert.Equal(expected, rig.Read(gpa + 0x40_3000).Leaf!.Value.Size);
        Assert.Equal(rule, rig.FaultRules(DecisionStage.MappingSize).Single());
    }

    [Theory]
    [InlineData("linux-6.8", KvmS2MemType.DeviceNGnRE, KvmS2MemType.DeviceNGnRE)]
    [InlineData("linux-6.9", KvmS2MemType.DeviceNGnRE, KvmS2MemType.NormalNc)]
    public void Rule18_before_617_special_pages_are_never_cacheable(string design, KvmS2MemType usemem, KvmS2MemType resmem)
    {
        var (rig, gpu) = Gh200("neoverse-n1", design);
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value)); // accepted on any host
        Assert.Equal(Errno.None, rig.AddSlot(2, ResIpa, gpu.MmapResmem(rig.Vmm).Value));
        var u = rig.Read(UseIpa);
        Assert.Equal(usemem, u.Leaf!.Value.KvmType);
        Assert.Equal(18, u.Faults.Single().Decision!.Value.Rule);
        Assert.Equal(18, rig.LastFaultRule(DecisionStage.Design));
        Assert.Equal(resmem, rig.Read(ResIpa, 0x44).Leaf!.Value.KvmType);
    }

    [Fact]
    public void No_memslot_reads_exit_to_mmio_and_exec_is_an_abort()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var r = rig.Read(0x900_0000);
        Assert.Equal(GuestAccessOutcome.MmioExit, r.Outcome);
        Assert.Equal(0x900_0000UL, r.Exit!.Value.PhysAddr);
        Assert.False(r.Exit!.Value.IsWrite);
        Assert.Equal(GuestAccessOutcome.AbortInjected, rig.Exec(0x900_0000).Outcome);
        Assert.Equal(GuestAccessOutcome.AbortInjected, rig.Read(1UL << 41).Outcome); // beyond the VM's 40-bit IPA
        rig.Vcpu.Enqueue(GuestAccessRequest.Write(0x900_0008, 0x04, 3));
        var run = rig.Vcpu.Run();
        Assert.Equal(KvmExitReason.Mmio, run.Value.Reason);
        Assert.True(run.Value.IsWrite);
    }

    [Fact]
    public void Slot_over_a_hole_faults_with_EFAULT()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.Vm.SetUserMemoryRegion2(new(0, 0, 0, 2 * MiB, 0x1000_0000_0000, 0, 0)));
        var r = rig.Read(0);
        Assert.Equal(GuestAccessOutcome.RunFailed, r.Outcome);
        Assert.Equal(Errno.EFAULT, r.RunError);
    }

    [Fact]
    public void Write_to_a_read_only_vma_is_EFAULT()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ro = AnonymousMemory.Mmap(rig.Vmm, 2 * MiB, Prot.PROT_READ).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ro));
        Assert.Equal(GuestAccessOutcome.Completed, rig.Read(0).Outcome);
        Assert.False(rig.Vm.Stage2.GetLeaf(0)!.Value.Writable);
        Assert.Equal(Errno.EFAULT, rig.Write(0, 1).RunError);
    }

    /// <summary>
    /// Each fault reports its stages in user_mem_abort's order, each with the rule that decided it (docs/rules.md): the
    /// memslot lookup (no rule), the VMA's cacheability (rule 3), the pfn (no rule), the design's type (rules 8-11, 18),
    /// then for a mapping the size (rule 15 for a page the host maps with a page), the permissions (rule 13) and the
    /// stage-2 write, or for a failure the exit with the rule that caused it (rule 8: KVM_RUN fails with EFAULT;
    /// rule 12: -ENOEXEC becomes an injected instruction abort).
    /// </summary>
    [Fact]
    public void Each_fault_reports_its_stages_in_order_with_the_rules_that_decided_them()
    {
        static IReadOnlyList<(DecisionStage, int)> Chain(Rig rig, Func<GuestAccessResult> access)
        {
            rig.Events.Clear();
            access();
            return rig.Events.Events.OfType<FaultDecided>().Select(e => (e.Stage, e.Rule)).ToList();
        }

        // Ordinary RAM, 4 KiB pages without THP: rule 11 (Normal), a page (rule 15), R plus X pre-granted (DIC, rule 13).
        var ram = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, ram.AddSlot(0, 0, AnonymousMemory.Mmap(ram.Vmm, 2 * MiB, thp: false).Value));
        Assert.Equal(
            [(DecisionStage.Memslot, 0), (DecisionStage.Vma, 3), (DecisionStage.Pfn, 0), (DecisionStage.Design, 11),
             (DecisionStage.MappingSize, 15), (DecisionStage.Permissions, 13), (DecisionStage.Stage2, 0)],
            Chain(ram, () => ram.Read(0x1000)));
        // A TLB hit takes no fault: nothing to decide.
        Assert.Empty(Chain(ram, () => ram.Read(0x1000)));
        // Outside every memslot: io_mem_abort, decided by the memslot lookup alone.
        Assert.Equal([(DecisionStage.Memslot, 0)], Chain(ram, () => ram.Read(1UL << 32)));

        // Cacheable VM_MIXEDMAP special memory (accepted at memslot time, rule 7) on a host without FWB: rule 8 fails
        // the fault, and KVM_RUN fails for rule 8's reason.
        var n1 = new Rig("neoverse-n1", "linux-6.17");
        Assert.Equal(Errno.None, n1.AddSlot(0, 1UL << 32, new MixedMapDevice(n1.Host, "dax0", 64 * MiB).Mmap(n1.Vmm).Value));
        Assert.Equal(
            [(DecisionStage.Memslot, 0), (DecisionStage.Vma, 3), (DecisionStage.Pfn, 0), (DecisionStage.Design, 8), (DecisionStage.Exit, 8)],
            Chain(n1, () => n1.Read(1UL << 32)));

        // An instruction fetch from non-cacheable special memory (resmem: rule 10) returns -ENOEXEC (rule 12) before a
        // mapping size is chosen.
        var (v2, gpu) = Gh200("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, v2.AddSlot(2, ResIpa, gpu.MmapResmem(v2.Vmm).Value));
        Assert.Equal(
            [(DecisionStage.Memslot, 0), (DecisionStage.Vma, 3), (DecisionStage.Pfn, 0), (DecisionStage.Design, 10), (DecisionStage.Exit, 12)],
            Chain(v2, () => v2.Exec(ResIpa, 0x44)));

        // Before 6.17, usemem is demoted (rule 18); the facts of the design stage name the pfn and the type chosen.
        var (old, oldGpu) = Gh200("neoverse-v2", "linux-6.9");
        Assert.Equal(Errno.None, old.AddSlot(1, UseIpa, oldGpu.MmapUsemem(old.Vmm).Value));
        old.Read(UseIpa);
        var design = old.Events.Events.OfType<FaultDecided>().Single(e => e.Stage == DecisionStage.Design);
        Assert.Equal((18, oldGpu.Usemem.Base >> 12, KvmS2MemType.DeviceNGnRE), (design.Rule, design.Facts.Pfn!.Value, design.Facts.Type!.Value));
        Assert.True(old.IsMismatchedAlias(old.LastAccessed));
    }

    [Fact]
    public void Rule17_enabling_dirty_logging_write_protects_blocks_and_a_write_maps_one_page()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(4 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        Assert.Equal(2 * MiB, rig.Write(0x1000, 1).Leaf!.Value.Size); // a THP block, writable
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram, KvmMemFlags.LOG_DIRTY_PAGES)); // FLAGS_ONLY
        Assert.False(rig.Vm.Stage2.GetLeaf(0x1000)!.Value.Writable); // write-protected, still a block
        var w = rig.Write(0x5000, 2);
        Assert.True(w.Faults.Single().IsPermissionFault);
        Assert.Equal(PageSizes.PAGE_SIZE, w.Leaf!.Value.Size); // logging forces PAGE_SIZE; the block is broken up
        Assert.Null(rig.Vm.Stage2.GetLeaf(0x1000)); // the rest of the block refaults later
        Assert.Equal(1UL, BitConverter.ToUInt64(rig.Read(0x1000).Data));
        var bits = new ulong[16];
        Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
        Assert.Equal(1UL << 5, bits[0]);
    }
}
