using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>The VMM's policies at VM start: what it asks KVM for, and what it refuses to ask.</summary>
public class VmmTests
{
    private static (VmmHost Vmm, Kernel.Mm.Process Process) HostWithGpu(string preset, string design)
    {
        var host = new Host("h", CpuPresets.Get(preset).Model, KvmDesigns.Create(design));
        var gpu = new NvGraceGpu(host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GB200, 64UL << 20, MemblkSize: 64UL << 20));
        var vfio = new ModelVfioHost().Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, NvGraceGpu.UsememRegionIndex, gpu.Usemem.Size, p => gpu.MmapUsemem(p));
        var p = host.CreateProcess("vmm");
        return (ModelVmm.Host("h", p, host.OpenKvm(p), vfio), p);
    }

    private static readonly VmConfig Config = new("vm", 40, 1,
    [
        new RegionConfig("ram", 0x4000_0000, 16UL << 20, false, new AnonymousRam()),
        new RegionConfig("usemem", 0x40_0000_0000, 64UL << 20, false, new DeviceMemory("gpu0", "usemem")),
    ]);

    [Fact]
    public void Check_capability_refuses_cacheable_device_memory_where_243_is_0_before_any_memslot()
    {
        var (vmm, process) = HostWithGpu("neoverse-n1", "linux-6.17");
        var policy = new VmmPolicy(CapabilityPolicy.CheckCapability, CacheableFlagChoice.PreferCacheable, false);
        var r = Vmm.Vmm.Start(vmm, Config, policy);
        Assert.Equal(StartOutcome.Refused, r.Outcome);
        Assert.Equal(0, r.Cap243.Value);
        Assert.Equal(RegionOutcome.Refused, r.Regions.Single(x => x.Name == "usemem").Outcome);
        Assert.Equal(RegionOutcome.Skipped, r.Regions.Single(x => x.Name == "ram").Outcome);
        Assert.Empty(process.Mm.Vmas);
    }

    [Fact]
    public void Rule6_trust_kernel_lets_KVM_refuse_the_memslot()
    {
        var (vmm, process) = HostWithGpu("neoverse-n1", "linux-6.17");
        var r = Vmm.Vmm.Start(vmm, Config, VmmPolicy.TrustKernel);
        Assert.Equal(StartOutcome.Failed, r.Outcome);
        Assert.Equal(Errno.EINVAL, r.Errno);
        Assert.Equal("KVM_SET_USER_MEMORY_REGION2 slot 1 (usemem)", r.FailedCall);
        Assert.Equal(RegionOutcome.Created, r.Regions.Single(x => x.Name == "ram").Outcome);
        Assert.Empty(process.Mm.Vmas);
    }

    [Theory]
    [InlineData(CacheableFlagChoice.PreferCacheable, true)]
    [InlineData(CacheableFlagChoice.PreferMigratable, false)]
    public void Under_the_memslot_flag_proposal_the_VMM_sets_the_flag_per_its_choice(CacheableFlagChoice choice, bool flagged)
    {
        var (vmm, _) = HostWithGpu("neoverse-v2", "proposal-memslot-flag");
        var r = Vmm.Vmm.Start(vmm, Config, new VmmPolicy(CapabilityPolicy.TrustKernel, choice, KernelHasCacheableFlag: true));
        Assert.Equal(StartOutcome.Started, r.Outcome);
        Assert.Equal(flagged, (r.Regions.Single(x => x.Name == "usemem").Flags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0);
        Assert.Equal(KvmMemFlags.None, r.Regions.Single(x => x.Name == "ram").Flags);
        Assert.True(r.Vm!.UsesRegion2);
    }

    [Fact]
    public void Check_capability_with_a_migratable_choice_does_not_need_the_capability()
    {
        var (vmm, _) = HostWithGpu("neoverse-n1", "proposal-memslot-flag");
        var r = Vmm.Vmm.Start(vmm, Config, new VmmPolicy(CapabilityPolicy.CheckCapability, CacheableFlagChoice.PreferMigratable, KernelHasCacheableFlag: true));
        Assert.Equal(StartOutcome.Started, r.Outcome);
    }

    [Fact]
    public void Stopping_a_VM_unmaps_its_memory()
    {
        var (vmm, process) = HostWithGpu("neoverse-v2", "linux-6.17");
        var r = Vmm.Vmm.Start(vmm, Config, VmmPolicy.TrustKernel);
        Assert.Equal(2, process.Mm.Vmas.Count);
        r.Vm!.Dispose();
        Assert.True(r.Vm.IsDestroyed);
        Assert.Empty(process.Mm.Vmas);
    }
}
