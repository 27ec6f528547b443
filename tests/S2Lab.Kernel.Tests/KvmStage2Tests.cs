using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm.Stage2;

namespace S2Lab.Kernel.Tests;

/// <summary>kvm_arm_setup_stage2/kvm_get_vtcr: VM tables from a CPU model (moved from Arch.Tests' KvmEntryPointTests).</summary>
public class KvmStage2Tests
{
    [Theory]
    [InlineData("neoverse-n1", false, true)]
    [InlineData("neoverse-v2", true, true)]
    [InlineData("cortex-a72", false, false)]
    public void KvmStage2_Create_takes_FWB_and_DIC_from_the_CPU(string preset, bool fwb, bool dic)
    {
        var cpu = CpuPresets.Get(preset).Model;
        var t = KvmStage2.Create(cpu, 40, out var err);
        Assert.Equal(Stage2Errno.None, err);
        Assert.NotNull(t);
        Assert.Equal(fwb, t.Fwb);
        Assert.Equal(dic, t.Dic);
        Assert.Equal(40, t.Geometry.IpaBits);
        Assert.Equal(cpu.PaBits >= 48 ? 48 : cpu.PaBits, t.Geometry.Vtcr.PsBits);
    }

    [Theory]
    [InlineData(31)]
    [InlineData(45)] // above the Cortex-A72's 44-bit limit
    public void KvmStage2_Create_rejects_IPA_sizes_outside_the_limit(int ipaBits)
    {
        Assert.Null(KvmStage2.Create(CpuPresets.Get("cortex-a72").Model, ipaBits, out var err));
        Assert.Equal(Stage2Errno.EINVAL, err);
    }
}
