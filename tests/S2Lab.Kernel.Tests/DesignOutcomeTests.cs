using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>
/// docs/designs.md, "What the demo finds": the demo's GH200 layout (RAM and usemem with MAIR 0xFF, resmem 0x44,
/// BAR0 0x04) on grace (Neoverse-V2) and altra (Neoverse-N1), per design.
/// </summary>
public class DesignOutcomeTests
{
    private const ulong RamIpa = 0x4000_0000;
    private const ulong UseIpa = 0x40_0000_0000;
    private const ulong ResIpa = 0x80_0000_0000;
    private const ulong BarIpa = 0x10_0000_0000;

    private sealed record Setup(Rig Rig, Errno Ram, Errno Use, Errno Res, Errno Bar);

    private static Setup Build(string cpu, string design, KvmMemFlags useFlags = KvmMemFlags.None, NvGraceGpuModel model = NvGraceGpuModel.GH200)
    {
        var rig = new Rig(cpu, design);
        var gpu = rig.AddGh200(model);
        var ram = rig.AddSlot(0, RamIpa, rig.Anon(64 * MiB));
        var use = rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value, useFlags);
        var res = gpu.Resmem is null ? Errno.ENODEV : rig.AddSlot(2, ResIpa, gpu.MmapResmem(rig.Vmm).Value);
        var bar = rig.AddSlot(3, BarIpa, gpu.MmapBar0(rig.Vmm).Value);
        return new Setup(rig, ram, use, res, bar);
    }

    [Fact]
    public void Linux69_on_grace_demotes_usemem_to_Device_a_mismatched_alias()
    {
        var s = Build("neoverse-v2", "linux-6.9");
        Assert.Equal(Errno.None, s.Use);
        var r = s.Rig.Write(UseIpa + 0x40, 1);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.Equal(KvmS2MemType.DeviceNGnRE, r.Leaf!.Value.KvmType);
        Assert.True(r.Effective!.Value.IsDevice); // property 3 fails: not Normal WB
        Assert.True(s.Rig.IsMismatchedAlias(s.Rig.LastAccessed)); // property 4 fails
        Assert.True(s.Rig.IsRamAsDevice(s.Rig.LastAccessed));
        // And an instruction fetch from usemem is refused (rule 12).
        Assert.Equal(GuestAccessOutcome.AbortInjected, s.Rig.Exec(UseIpa).Outcome);
    }

    [Fact]
    public void Linux617_on_grace_maps_usemem_Normal_with_no_hazard()
    {
        var s = Build("neoverse-v2", "linux-6.17");
        Assert.All(new[] { s.Ram, s.Use, s.Res, s.Bar }, e => Assert.Equal(Errno.None, e));
        foreach (var (ipa, mair) in new[] { (RamIpa, (byte)0xFF), (UseIpa, (byte)0xFF), (ResIpa, (byte)0x44), (BarIpa, (byte)0x04) })
        {
            var w = s.Rig.Write(ipa + 0x100, 0xDEAD, mair);
            Assert.Equal(GuestAccessOutcome.Completed, w.Outcome);
            s.Rig.AssertNoHazard(s.Rig.LastAccessed);
            Assert.Equal(0xDEADUL, BitConverter.ToUInt64(s.Rig.Read(ipa + 0x100, mair).Data));
        }
        var use = s.Rig.Read(UseIpa);
        Assert.True(use.Effective!.Value.IsCacheable); // property 3 holds
        Assert.Equal(KvmS2MemType.NormalNc, s.Rig.Read(ResIpa, 0x44).Leaf!.Value.KvmType);
        Assert.True(s.Rig.Read(BarIpa, 0x04).Effective!.Value.IsDevice);
        Assert.Equal(GuestAccessOutcome.Completed, s.Rig.Exec(UseIpa + 0x1000).Outcome);
    }

    [Fact]
    public void Linux617_on_altra_refuses_usemem_at_memslot_creation()
    {
        var s = Build("neoverse-n1", "linux-6.17");
        Assert.Equal(Errno.None, s.Ram);
        Assert.Equal(Errno.EINVAL, s.Use); // the migration to altra is refused here
        Assert.Equal(Errno.None, s.Res);
        Assert.Equal(Errno.None, s.Bar);
        Assert.Equal(0, s.Rig.Vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value); // earlier still
    }

    [Fact]
    public void Linux617_with_a_cacheable_MIXEDMAP_on_altra_accepts_then_fails_the_fault()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var dev = new MixedMapDevice(rig.Host, "gpu-mixed", 512 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, dev.Mmap(rig.Vmm).Value)); // accepted (rule 7) ...
        var r = rig.Read(UseIpa);
        Assert.Equal(GuestAccessOutcome.RunFailed, r.Outcome); // ... property 2 fails
        Assert.Equal(Errno.EFAULT, r.RunError);
    }

    [Theory]
    [InlineData("neoverse-n1", false)]
    [InlineData("neoverse-v2", true)]
    public void Rule7_Linux617_does_not_check_nvgrace_usemem_mapped_MIXEDMAP_at_memslot_time(string cpu, bool works)
    {
        var rig = new Rig(cpu, "linux-6.17");
        var gpu = new NvGraceGpu(rig.Host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 4 * GiB, Bar0Size: 16 * MiB,
            UsememMapping: NvGraceUsememMapping.Mixedmap));
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, gpu.MmapUsemem(rig.Vmm).Value)); // accepted on both hosts
        var r = rig.Write(UseIpa + 0x80, 0x1234);
        if (works)
        {
            Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
            Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.KvmType);
            var bytes = new byte[8];
            rig.Host.Memory.Read(gpu.Usemem.Base + 0x80, bytes); // the write landed in usemem itself
            Assert.Equal(0x1234UL, BitConverter.ToUInt64(bytes));
        }
        else
        {
            Assert.Equal(GuestAccessOutcome.RunFailed, r.Outcome); // property 2 fails: death at fault time
            Assert.Equal(Errno.EFAULT, r.RunError);
        }
    }

    [Fact]
    public void Module_param_on_altra_maps_usemem_cacheable_with_impossible_maintenance()
    {
        var s = Build("neoverse-n1", "proposal-module-param=on");
        Assert.Equal(Errno.None, s.Use);
        var r = s.Rig.Write(UseIpa, 1);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.KvmType);
        Assert.Contains(r.Faults.Single().Cmos, c => c.IsImpossible);
        Assert.True(s.Rig.AnyImpossibleCmo); // property 5 fails: impossible maintenance
    }

    [Fact]
    public void Module_param_off_behaves_as_617()
    {
        Assert.Equal(Errno.EINVAL, Build("neoverse-n1", "proposal-module-param").Use);
        Assert.Equal(Errno.None, Build("neoverse-v2", "proposal-module-param").Use);
    }

    [Fact]
    public void Memslot_flag_clear_demotes_usemem_a_mismatched_alias()
    {
        var s = Build("neoverse-v2", "proposal-memslot-flag");
        Assert.Equal(Errno.None, s.Use);
        var r = s.Rig.Read(UseIpa);
        Assert.Equal(KvmS2MemType.DeviceNGnRE, r.Leaf!.Value.KvmType);
        Assert.True(s.Rig.IsMismatchedAlias(s.Rig.LastAccessed)); // property 4 fails
    }

    [Fact]
    public void Memslot_flag_set_maps_usemem_Normal_on_grace_and_is_refused_on_altra()
    {
        var grace = Build("neoverse-v2", "proposal-memslot-flag", KvmMemFlags.ENABLE_CACHEABLE_PFNMAP);
        Assert.Equal(Errno.None, grace.Use);
        var r = grace.Rig.Read(UseIpa);
        Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.KvmType);
        grace.Rig.AssertNoHazard(grace.Rig.LastAccessed);
        Assert.Equal(Errno.EINVAL, Build("neoverse-n1", "proposal-memslot-flag", KvmMemFlags.ENABLE_CACHEABLE_PFNMAP).Use);
    }

    [Fact]
    public void Memslot_flag_on_a_noncacheable_vma_is_EINVAL()
    {
        var rig = new Rig("neoverse-v2", "proposal-memslot-flag");
        var gpu = rig.AddGh200();
        Assert.Equal(Errno.EINVAL, rig.AddSlot(2, ResIpa, gpu.MmapResmem(rig.Vmm).Value, KvmMemFlags.ENABLE_CACHEABLE_PFNMAP));
        // The flag is only a valid memslot flag on designs that define it.
        var other = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.EINVAL, other.AddSlot(1, UseIpa, other.AddGh200().MmapUsemem(other.Vmm).Value, KvmMemFlags.ENABLE_CACHEABLE_PFNMAP));
    }

    [Fact]
    public void Linux68_maps_resmem_Device_and_linux69_Normal_NC()
    {
        Assert.Equal(KvmS2MemType.DeviceNGnRE, Build("neoverse-v2", "linux-6.8").Rig.Read(ResIpa, 0x44).Leaf!.Value.KvmType);
        Assert.Equal(KvmS2MemType.NormalNc, Build("neoverse-v2", "linux-6.9").Rig.Read(ResIpa, 0x44).Leaf!.Value.KvmType);
    }

    [Fact]
    public void Gb200_has_no_resmem_and_all_memory_is_usemem()
    {
        var s = Build("neoverse-v2", "linux-6.17", model: NvGraceGpuModel.GB200);
        Assert.Equal(Errno.ENODEV, s.Res);
        Assert.Equal(Errno.None, s.Use);
    }

    [Fact]
    public void Guest_data_written_reads_back_through_the_vmm_mapping()
    {
        var s = Build("neoverse-v2", "linux-6.17");
        Assert.Equal(GuestAccessOutcome.Completed, s.Rig.Write(RamIpa + 0x8000, 0x1234_5678).Outcome);
        var slot = s.Rig.Vm.Memslots().ById(0)!;
        var buf = new byte[8];
        Assert.Equal(Errno.None, s.Rig.Vmm.Mm.Read(slot.UserspaceAddr + 0x8000, buf));
        Assert.Equal(0x1234_5678UL, BitConverter.ToUInt64(buf));
        // And the VMM writing usemem is seen by the guest.
        var use = s.Rig.Vm.Memslots().ById(1)!;
        Assert.Equal(Errno.None, s.Rig.Vmm.Mm.Write(use.UserspaceAddr + 0x10, BitConverter.GetBytes(77UL)));
        Assert.Equal(77UL, BitConverter.ToUInt64(s.Rig.Read(UseIpa + 0x10).Data));
    }
}
