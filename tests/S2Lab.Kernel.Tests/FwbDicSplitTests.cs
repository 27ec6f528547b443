using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
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
        Assert.Equal(KvmS2MemType.DeviceNGnRE, rig.Read(UseIpa).Leaf!.Value.MemType);
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
    /// A DAX-like VM_MIXEDMAP device whose host page tables map 2 MiB with a PMD (as fsdax/devdax can): the case where
    /// transparent_hugepage_adjust() would enlarge a PAGE_SIZE stage-2 mapping if it were allowed to.
    /// </summary>
    private sealed class PmdMappedDevice(PhysRegion region) : IVmaBacking
    {
        public string Kind => "pmd-mapped device";

        public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

        public HostPte? Lookup(Vma vma, ulong hva)
        {
            var off = (vma.PgOff << PageSizes.PAGE_SHIFT) + (hva - vma.Start);
            return off < region.Size ? new HostPte((region.Base + off) >> PageSizes.PAGE_SHIFT, PageSizes.PMD_SIZE, true) : null;
        }

        public void Release(Vma vma, ulong start, ulong end)
        {
        }
    }

    private static GuestAccessResult ReadPmdMappedDevice(string cpu, MtIndex attr, VmFlags extra = VmFlags.VM_NONE)
    {
        var rig = new Rig(cpu, "linux-6.17");
        var region = rig.Host.Memory.AddDeviceRegion("dax1 memory", 8 * MiB, PhysRegionKind.DeviceMemory);
        var vma = rig.Vmm.Mm.InsertVma(8 * MiB, VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_MIXEDMAP | extra,
            new PgProt(attr), 0, new PmdMappedDevice(region), "dax1", alignment: PageSizes.PMD_SIZE).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, DevIpa, vma));
        var r = rig.Read(DevIpa + 0x3000, attr == MtIndex.MT_NORMAL ? (byte)0xFF : (byte)0x44);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        return r;
    }

    [Theory]
    [InlineData(MtIndex.MT_NORMAL_NC, VmFlags.VM_ALLOW_ANY_UNCACHED, KvmS2MemType.NormalNc)]
    [InlineData(MtIndex.MT_DEVICE_nGnRE, VmFlags.VM_NONE, KvmS2MemType.DeviceNGnRE)]
    public void Rule17_noncacheable_special_page_is_not_enlarged_although_the_host_maps_a_PMD(MtIndex attr, VmFlags extra, KvmS2MemType type)
    {
        var r = ReadPmdMappedDevice("neoverse-v2", attr, extra);
        Assert.Equal(type, r.Leaf!.Value.MemType);
        Assert.Equal(PageSizes.PAGE_SIZE, r.Leaf!.Value.Size);
    }

    [Fact]
    public void Rule16_the_same_device_mapped_cacheable_becomes_a_PMD_block()
    {
        // The control for the rule 17 test: cacheable, so transparent_hugepage_adjust() applies.
        var r = ReadPmdMappedDevice("neoverse-v2", MtIndex.MT_NORMAL);
        Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.MemType);
        Assert.Equal(PageSizes.PMD_SIZE, r.Leaf!.Value.Size);
    }
}
