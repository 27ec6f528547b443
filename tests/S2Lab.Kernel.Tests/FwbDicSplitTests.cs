using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>
/// Hosts where FEAT_S2FWB and CTR_EL0.DIC differ. Rule 1 needs both for cacheable PFNMAP, rule 13 keys the X pre-grant
/// on DIC alone: a host with one and not the other is where a check on the wrong feature shows. No preset has FWB
/// without DIC, so that CPU is built from its ID registers here; Neoverse-N1 is DIC without FWB.
/// </summary>
public class FwbDicSplitTests
{
    private const ulong UseIpa = 0x40_0000_0000;
    private const ulong DevIpa = 1UL << 32;

    /// <summary>ID_AA64MMFR2_EL1.FWB = 1, CTR_EL0 with IDC but not DIC (RES1 bit 31, 64-byte lines), 48-bit PA.</summary>
    internal static readonly CpuModel FwbWithoutDic = CpuModel.FromRegisters("fwb-no-dic",
        (ulong)IdAa64Mmfr0El1.EncodePaBits(48)!.Value,
        1UL << IdAa64Mmfr2El1.FwbShift,
        (1UL << 31) | (1UL << CtrEl0.IdcBit) | (4UL << 16) | 4UL);

    private static CpuModel DicWithoutFwb => CpuPresets.Get("neoverse-n1").Model;

    [Fact]
    public void The_custom_cpus_split_FWB_and_DIC_as_intended()
    {
        Assert.True(FwbWithoutDic.HasStage2Fwb);
        Assert.False(FwbWithoutDic.HasCacheDic);
        Assert.False(DicWithoutFwb.HasStage2Fwb);
        Assert.True(DicWithoutFwb.HasCacheDic);
        Assert.False(FwbWithoutDic.SupportsCacheablePfnmap);
        Assert.False(DicWithoutFwb.SupportsCacheablePfnmap);
    }

    public static TheoryData<string, string> SplitHosts => new()
    {
        { "fwb-no-dic", "linux-6.17" },
        { "dic-no-fwb", "linux-6.17" },
        { "fwb-no-dic", "proposal-module-param=off" },
        { "dic-no-fwb", "proposal-module-param=off" },
    };

    private static CpuModel Cpu(string which) => which == "fwb-no-dic" ? FwbWithoutDic : DicWithoutFwb;

    [Theory]
    [MemberData(nameof(SplitHosts))]
    public void Rule08_cacheable_special_page_on_a_host_with_only_one_of_FWB_and_DIC_fails_the_fault_with_EFAULT(string cpu, string design)
    {
        // VM_MIXEDMAP is not checked at memslot time (rule 7), so the fault-time check is the only one left.
        var rig = new Rig(Cpu(cpu), design);
        var dev = new MixedMapDevice(rig.Host, "dax0", 64 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, DevIpa, dev.Mmap(rig.Vmm).Value));
        var r = rig.Read(DevIpa);
        Assert.Equal(GuestAccessOutcome.RunFailed, r.Outcome);
        Assert.Equal(Errno.EFAULT, r.RunError);
        Assert.Equal(8, r.Faults.Single().Decision!.Value.Rule);
        Assert.Null(rig.Vm.Stage2.GetLeaf(DevIpa));
    }

    [Theory]
    [MemberData(nameof(SplitHosts))]
    public void Rule06_cacheable_pfnmap_memslot_on_a_host_with_only_one_of_FWB_and_DIC_is_EINVAL_and_cap_243_says_0(string cpu, string design)
    {
        var rig = new Rig(Cpu(cpu), design);
        var gpu = rig.AddGh200();
        Assert.Equal(Errno.EINVAL, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value));
        // Rule 2: the VM fd tells the truth in advance.
        Assert.Equal(0L, rig.Vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value);
    }

    [Fact]
    public void Rule09_the_same_special_page_with_FWB_and_DIC_is_Normal()
    {
        // The control for the rule 8 test above: only the CPU differs.
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var dev = new MixedMapDevice(rig.Host, "dax0", 64 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, DevIpa, dev.Mmap(rig.Vmm).Value));
        var r = rig.Read(DevIpa);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.Equal(KvmS2MemAttr.MT_S2_FWB_NORMAL, r.Leaf!.Value.MemAttr);
    }

    [Fact]
    public void Rule13_X_is_pregranted_on_DIC_without_FWB()
    {
        var rig = new Rig(DicWithoutFwb, "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(2 * MiB)));
        var r = rig.Read(0x1000);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.True(r.Leaf!.Value.Executable, "DIC: a Normal mapping is executable from its first (read) fault");
        // So an instruction fetch needs no second fault.
        Assert.Empty(rig.Exec(0x1000).Faults);
    }

    [Fact]
    public void Rule13_X_is_not_pregranted_on_FWB_without_DIC()
    {
        var rig = new Rig(FwbWithoutDic, "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(2 * MiB)));
        var r = rig.Read(0x1000);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.False(r.Leaf!.Value.Executable, "no DIC: X only on an exec fault, whatever FWB says");
        var x = rig.Exec(0x1000);
        Assert.Equal(GuestAccessOutcome.Completed, x.Outcome);
        Assert.True(x.Faults.Single().IsPermissionFault);
        Assert.True(x.Leaf!.Value.Executable);
    }

    [Fact]
    public void Rule02_memslot_flag_design_on_FWB_without_DIC_says_0_and_refuses_the_flag()
    {
        var rig = new Rig(FwbWithoutDic, "proposal-memslot-flag");
        Assert.Equal(0L, rig.Vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value);
        var gpu = rig.AddGh200();
        // Rule 21: the flag is not in the allowed set on this host.
        Assert.Equal(Errno.EINVAL, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value, KvmMemFlags.ENABLE_CACHEABLE_PFNMAP));
        // Without the flag the slot is accepted and forced non-cacheable (rule 10 as the design defines it).
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value));
        Assert.Equal(KvmS2MemType.DeviceNGnRE, rig.Read(UseIpa).Leaf!.Value.KvmType);
    }

    [Fact]
    public void Rule08_memslot_flag_design_fails_a_flagged_fault_on_FWB_without_DIC()
    {
        // A flagged slot cannot be created on this host (previous test), so the design's fault-time check is asked
        // directly, with the facts user_mem_abort() would pass it.
        var design = KvmDesigns.Create("proposal-memslot-flag");
        var flagged = new FaultTypeContext(FwbWithoutDic, VmFlags.VM_PFNMAP | VmFlags.VM_IO, VmaCacheable: true, PfnIsMapMemory: false,
            KvmMemFlags.ENABLE_CACHEABLE_PFNMAP);
        var d = design.DecideStage2Type(flagged);
        Assert.Equal(Errno.EFAULT, d.Error);
        Assert.Equal(8, d.Rule);
        var supported = design.DecideStage2Type(flagged with { Cpu = CpuPresets.Get("neoverse-v2").Model });
        Assert.True(supported.IsOk);
        Assert.Equal(KvmS2MemType.Normal, supported.Type);
        Assert.Equal(KvmMemFlags.None, design.ExtraMemslotFlags(FwbWithoutDic));
    }

    /// <summary>
    /// A DAX-like VM_MIXEDMAP|VM_IO device whose host page tables map it with leaves of <paramref name="hostLeaf"/>
    /// bytes: a PMD (as fsdax/devdax can) or pages. transparent_hugepage_adjust() sizes the stage-2 mapping from that
    /// host leaf (rule 15, as Linux 7.3 and 6.12.113+ do; docs/kvm-arm64-differences.md A1).
    /// </summary>
    private sealed class MappedDevice(PhysRegion region, ulong hostLeaf) : IVmaBacking
    {
        public string Kind => "mapped device";

        public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

        public HostPte? Lookup(Vma vma, ulong hva)
        {
            var off = (vma.PgOff << PageSizes.PAGE_SHIFT) + (hva - vma.Start);
            return off < region.Size ? new HostPte((region.Base + off) >> PageSizes.PAGE_SHIFT, hostLeaf, true) : null;
        }

        public void Release(Vma vma, ulong start, ulong end)
        {
        }
    }

    private static GuestAccessResult ReadMappedDevice(string cpu, MtIndex attr, VmFlags extra, ulong hostLeaf, bool logDirty = false)
    {
        var rig = new Rig(cpu, "linux-6.17");
        var region = rig.Host.Memory.AddDeviceRegion("dax1 memory", 8 * MiB, PhysRegionKind.DeviceMemory);
        // VM_IO: a VM_MIXEDMAP VMA without it over pages without struct page fails in hva_to_pfn (A3).
        var vma = rig.Vmm.Mm.InsertVma(8 * MiB, VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_MIXEDMAP | VmFlags.VM_IO | extra,
            new PgProt(attr), 0, new MappedDevice(region, hostLeaf), "dax1", alignment: PageSizes.PMD_SIZE).Value;
        var flags = logDirty ? KvmMemFlags.LOG_DIRTY_PAGES : KvmMemFlags.None;
        Assert.Equal(Errno.None, rig.AddSlot(0, DevIpa, vma, flags));
        var r = rig.Read(DevIpa + 0x3000, attr == MtIndex.MT_NORMAL ? (byte)0xFF : (byte)0x44);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        return r;
    }

    [Theory]
    [InlineData(MtIndex.MT_NORMAL_NC, VmFlags.VM_ALLOW_ANY_UNCACHED, KvmS2MemType.NormalNc)]
    [InlineData(MtIndex.MT_DEVICE_nGnRE, VmFlags.VM_NONE, KvmS2MemType.DeviceNGnRE)]
    [InlineData(MtIndex.MT_NORMAL, VmFlags.VM_NONE, KvmS2MemType.Normal)]
    public void Rule15_17_special_memory_takes_the_host_leaf_size_whatever_its_type(MtIndex attr, VmFlags extra, KvmS2MemType type)
    {
        // Non-cacheable is not a reason to stay a page in the kernels the oracle checked: a host PMD gives a PMD block,
        // a host page gives a page although the VMA, the pfn and the memslot are all 2 MiB aligned.
        var pmd = ReadMappedDevice("neoverse-v2", attr, extra, PageSizes.PMD_SIZE);
        Assert.Equal(type, pmd.Leaf!.Value.KvmType);
        Assert.Equal(PageSizes.PMD_SIZE, pmd.Leaf!.Value.Size);
        var page = ReadMappedDevice("neoverse-v2", attr, extra, PageSizes.PAGE_SIZE);
        Assert.Equal(type, page.Leaf!.Value.KvmType);
        Assert.Equal(PageSizes.PAGE_SIZE, page.Leaf!.Value.Size);
    }

    [Fact]
    public void Rule17_dirty_logging_forces_a_page_although_the_host_maps_a_PMD()
    {
        // VM_MIXEDMAP can be dirty-logged (rule 6 refuses only VM_PFNMAP); logging sets max_map_size to a page.
        var r = ReadMappedDevice("neoverse-v2", MtIndex.MT_NORMAL, VmFlags.VM_NONE, PageSizes.PMD_SIZE, logDirty: true);
        Assert.Equal(PageSizes.PAGE_SIZE, r.Leaf!.Value.Size);
    }
}
