using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using S2Lab.Kernel;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Judging;
using S2Lab.Lab.Runner;
using Hazard = S2Lab.Lab.Judging.Hazard;
using HazardKind = S2Lab.Lab.Judging.HazardKind;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Each hazard of docs/architecture.md ("Hazards, defined once"), judged from kernel events: a case that has it and a
/// case that does not, on hand-made events and on the model.
/// </summary>
public class HazardTests
{
    private const ulong GiB = 1UL << 30;
    private const ulong MiB = 1UL << 20;

    private static readonly FaultFacts CacheableVma = FaultFacts.None with { Vma = "usemem", VmaPgProt = "MT_NORMAL", VmaCacheable = true };
    private static readonly FaultFacts NonCacheableVma = FaultFacts.None with { Vma = "resmem", VmaPgProt = "MT_NORMAL_NC" };

    private static MemoryAccessed Access(KvmS2MemType s2, byte mair, ulong pa = 0x8000_0000, bool fwb = true)
    {
        var leaf = new S2Leaf(0x1000, S2Descriptor.Leaf(pa, 3, new S2LeafAttributes(KvmS2MemAttr.PageS2MemAttr(s2, fwb), S2Permissions.Read)), 3, fwb: fwb);
        var input = new CombineInput(mair, Shareability.ISH, leaf.MemAttr, Shareability.ISH, fwb);
        return new MemoryAccessed(1, "h", 1, "vm1/vcpu0", 0, S2AccessKind.Read, 0x1000, pa, leaf, input, AttributeCombiner.Combine(input), Array.Empty<byte>());
    }

    private static CmoRequired Cmo(CacheOp op, bool needed, bool possible) => new(1, "h", 1, op, 0x8000_0000, 4096, needed, possible, "");

    [Fact]
    public void Mismatched_alias_caused_by_stage_2_over_a_cacheable_VMA()
    {
        var h = Hazards.MismatchedAlias(Access(KvmS2MemType.DeviceNGnRE, 0xFF), CacheableVma, true);
        Assert.Equal((HazardKind.MismatchedAlias, AliasCause.Stage2), (h!.Kind, h.Cause));
        Assert.Contains("the host VMA usemem (MT_NORMAL) is cacheable", h.Detail, StringComparison.Ordinal);
        Assert.Equal("mismatched-alias", h.Name);
    }

    [Fact]
    public void Mismatched_alias_caused_by_the_guest_when_stage_2_is_Normal()
    {
        // Without FWB the combine takes the weaker attribute: a Normal-NC stage 1 wins (Arm DDI 0487, "Combining
        // stage 1 and stage 2 attributes"). With FWB, MemAttr 0b110 forces write-back whatever stage 1 says.
        var h = Hazards.MismatchedAlias(Access(KvmS2MemType.Normal, 0x44, fwb: false), CacheableVma, false);
        Assert.Equal(AliasCause.GuestStage1, h!.Cause);
        Assert.Null(Hazards.MismatchedAlias(Access(KvmS2MemType.Normal, 0x44, fwb: true), CacheableVma, true));
    }

    [Fact]
    public void No_mismatched_alias_when_the_access_is_cacheable_or_the_host_is_not()
    {
        Assert.Null(Hazards.MismatchedAlias(Access(KvmS2MemType.Normal, 0xFF), CacheableVma, true));
        Assert.Null(Hazards.MismatchedAlias(Access(KvmS2MemType.NormalNc, 0x44), NonCacheableVma, true));
        // The allocation-free path gives no stage-1 attribute, so there is nothing to judge.
        var fast = Access(KvmS2MemType.DeviceNGnRE, 0xFF) with { Input = null, Effective = null };
        Assert.Null(Hazards.MismatchedAlias(fast, CacheableVma, true));
    }

    /// <summary>
    /// The case the old property 4 missed: a VM_PFNMAP with a non-cacheable pgprot over kernel RAM. The VMA is not
    /// cacheable, but the linear map keeps the RAM cacheable (pfn_is_map_memory), so a non-cacheable stage 2 is a
    /// mismatched alias caused by stage 2.
    /// </summary>
    [Fact]
    public void Mismatched_alias_through_the_linear_map_under_a_non_cacheable_PFNMAP_of_kernel_RAM()
    {
        var overRam = NonCacheableVma with { Vma = "/dev/mem", VmaFlags = VmFlags.VM_PFNMAP | VmFlags.VM_IO, MapMemory = true };
        var h = Hazards.MismatchedAlias(Access(KvmS2MemType.NormalNc, 0xFF), overRam, true);
        Assert.Equal(AliasCause.Stage2, h!.Cause);
        Assert.Contains("the kernel's linear map is cacheable", h.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// The same mapping on the model: /dev/mem O_SYNC over RAM. Rule 11 makes stage 2 Normal, so a guest that maps it
    /// Normal-NC itself makes the alias (cause GuestStage1, on a host without FWB) and a write-back guest makes none.
    /// </summary>
    [Fact]
    public void On_the_model_a_non_cacheable_PFNMAP_of_kernel_RAM_is_Normal_at_stage_2_and_the_guest_decides()
    {
        var host = new Host("h", CpuPresets.Get("neoverse-n1").Model, KvmDesigns.Create("linux-6.17"), new PhysicalMemory(ramSize: 4 * GiB));
        var vmm = host.CreateProcess("vmm");
        using var kvm = host.OpenKvm(vmm);
        using var log = KernelEventLog.Attach(kvm);
        var vm = kvm.CreateModelVm().Value;
        var vma = DevMem.Mmap(vmm, host.Memory.Ram.Base + GiB, 2 * MiB, oSync: true).Value;
        Assert.False(vma.IsCacheable);
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, 0, vma.Size, vma.Start, 0, 0)));
        var vcpu = vm.CreateModelVcpu(0).Value;
        log.Take();
        vcpu.Access(GuestAccessRequest.Read(0x1000, 0xFF));
        Assert.Empty(log.Judge(log.Take()));
        vcpu.Access(GuestAccessRequest.Read(0x1000, 0x44));
        var h = Assert.Single(log.Judge(log.Take()));
        Assert.Equal((HazardKind.MismatchedAlias, AliasCause.GuestStage1), (h.Kind, h.Cause));
        Assert.Contains("linear map", h.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Impossible_maintenance_is_a_needed_CMO_without_a_kernel_VA()
    {
        var d = Hazards.ImpossibleMaintenance(Cmo(CacheOp.DcCivac, true, false));
        Assert.Equal(HazardKind.ImpossibleMaintenance, d!.Kind);
        Assert.Contains("D-cache", d.Detail, StringComparison.Ordinal);
        Assert.Contains("I-cache", Hazards.ImpossibleMaintenance(Cmo(CacheOp.IcIvau, true, false))!.Detail, StringComparison.Ordinal);
        Assert.Null(Hazards.ImpossibleMaintenance(Cmo(CacheOp.DcCivac, true, true)));
        Assert.Null(Hazards.ImpossibleMaintenance(Cmo(CacheOp.DcCivac, false, false)));
    }

    [Fact]
    public void Ram_as_device_needs_a_Device_type_over_memory()
    {
        var mem = new PhysicalMemory(ramSize: 4 * GiB);
        var hbm = mem.AddDeviceRegion("hbm", GiB, PhysRegionKind.DeviceMemory);
        var bar = mem.AddDeviceRegion("bar", 16 * MiB, PhysRegionKind.Mmio);
        var ram = mem.Ram.Base;
        Assert.Equal(HazardKind.RamAsDevice, Hazards.RamAsDevice(Access(KvmS2MemType.DeviceNGnRE, 0xFF, ram), mem.RegionOf(ram))!.Kind);
        Assert.Contains("hbm is memory", Hazards.RamAsDevice(Access(KvmS2MemType.DeviceNGnRE, 0xFF, hbm.Base), hbm)!.Detail, StringComparison.Ordinal);
        Assert.Null(Hazards.RamAsDevice(Access(KvmS2MemType.DeviceNGnRE, 0xFF, bar.Base), bar)); // MMIO is not memory
        Assert.Null(Hazards.RamAsDevice(Access(KvmS2MemType.NormalNc, 0xFF, hbm.Base), hbm)); // Normal-NC is not Device
    }

    [Fact]
    public void The_log_judges_each_kind_once_from_the_facts_of_the_fault_that_mapped_the_leaf()
    {
        var host = new Host("h", CpuPresets.Get("neoverse-n1").Model, KvmDesigns.Create("linux-6.9"), new PhysicalMemory(ramSize: 4 * GiB));
        var vmm = host.CreateProcess("vmm");
        using var kvm = host.OpenKvm(vmm);
        using var log = KernelEventLog.Attach(kvm);
        var gpu = new NvGraceGpu(host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 4 * GiB, Bar0Size: 16 * MiB));
        var vm = kvm.CreateModelVm().Value;
        var use = gpu.MmapUsemem(vmm).Value;
        Assert.Equal(Errno.None, vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(1, 0, 0x40_0000_0000, use.Size, use.Start, 0, 0)));
        var vcpu = vm.CreateModelVcpu(0).Value;
        vcpu.Access(GuestAccessRequest.Read(0x40_0000_0000, 0xFF));
        vcpu.Access(GuestAccessRequest.Read(0x40_0000_0008, 0xFF)); // a TLB hit: the facts come from the first fault
        var hazards = log.Judge(log.Take());
        Assert.Equal([HazardKind.MismatchedAlias, HazardKind.RamAsDevice], hazards.Select(h => h.Kind));
        Assert.Equal(AliasCause.Stage2, hazards[0].Cause);
        Assert.Contains("usemem", hazards[0].Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// Observed stale copy: a word arrived other than the source's last write. The bytes are the hazard, whatever the
    /// types (a cacheable line the PoC moved past, B2.11); with a non-cacheable stage 2 the reason names it.
    /// </summary>
    [Fact]
    public void Stale_copy_observed_reports_the_bytes_copied_and_expected()
    {
        var h = Hazards.StaleCopy("gpu0.usemem", KvmS2MemType.DeviceNGnRE, vmmCacheable: true, guestWrote: true, new CopiedWord(0x40, 0x1111, 0x2222));
        Assert.Equal((HazardKind.StaleCopy, "stale-copy"), (h!.Kind, h.Name));
        Assert.StartsWith("copied 0x0000000000001111 at +0x40, expected 0x0000000000002222", h.Detail, StringComparison.Ordinal);
        Assert.Contains("device-ngnre stage-2 mapping", h.Detail, StringComparison.Ordinal);
        var cacheable = Hazards.StaleCopy("gpu0.usemem", KvmS2MemType.Normal, vmmCacheable: true, guestWrote: true, new CopiedWord(0, 1, 2));
        Assert.Contains("a line older than the last write", cacheable!.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// Possible stale copy: every word arrived, but the guest wrote through a Device or Normal-NC stage 2 while the VMM's
    /// mapping is cacheable (a mismatched alias, B2.11; a cacheable line can be allocated at any time, D7.5.1).
    /// </summary>
    [Theory]
    [InlineData(KvmS2MemType.DeviceNGnRE)]
    [InlineData(KvmS2MemType.NormalNc)]
    public void Stale_copy_is_possible_when_the_guest_wrote_around_the_caches_the_VMM_reads_through(KvmS2MemType s2)
    {
        var h = Hazards.StaleCopy("gpu0.usemem", s2, vmmCacheable: true, guestWrote: true, null);
        Assert.Equal(HazardKind.StaleCopy, h!.Kind);
        Assert.Contains("possible", h.Detail, StringComparison.Ordinal);
        Assert.Contains("can miss the guest's writes", h.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void No_stale_copy_when_the_copy_arrived_and_no_alias_or_no_write_could_hide_one()
    {
        Assert.Null(Hazards.StaleCopy("gpu0.usemem", KvmS2MemType.Normal, vmmCacheable: true, guestWrote: true, null)); // one cacheable path
        Assert.Null(Hazards.StaleCopy("gpu0.resmem", KvmS2MemType.NormalNc, vmmCacheable: false, guestWrote: true, null)); // both around
        Assert.Null(Hazards.StaleCopy("gpu0.usemem", KvmS2MemType.DeviceNGnRE, vmmCacheable: true, guestWrote: false, null)); // nothing to miss
        Assert.Null(Hazards.StaleCopy("gpu0.usemem", null, vmmCacheable: true, guestWrote: true, null));
    }
}
