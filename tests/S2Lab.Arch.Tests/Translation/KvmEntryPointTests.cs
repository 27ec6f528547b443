using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>The pgtable.c entry points the kernel model uses: VM creation from a CPU model, ageing.</summary>
public class KvmEntryPointTests
{
    [Theory]
    [InlineData("neoverse-n1", false, true)]
    [InlineData("neoverse-v2", true, true)]
    [InlineData("cortex-a72", false, false)]
    public void ForKvm_takes_FWB_and_DIC_from_the_CPU(string preset, bool fwb, bool dic)
    {
        var cpu = CpuPresets.Get(preset).Model;
        var t = Stage2PageTable.ForKvm(cpu, 40, out var err);
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
    public void ForKvm_rejects_IPA_sizes_outside_the_limit(int ipaBits)
    {
        Assert.Null(Stage2PageTable.ForKvm(CpuPresets.Get("cortex-a72").Model, ipaBits, out var err));
        Assert.Equal(Stage2Errno.EINVAL, err);
    }

    [Fact]
    public void Make_young_sets_AF_and_test_clear_young_reports_and_clears_it()
    {
        var t = Create();
        t.Map(GiB, 8 * KiB, 0x1000_0000, Normal(t) with { AccessFlag = false }, 4 * KiB);
        Assert.False(t.TestClearYoung(GiB, 8 * KiB, clear: false));
        Assert.Equal(S2FaultKind.AccessFlag, t.Translate(GiB, S2AccessKind.Read).Fault.Kind);
        Assert.Equal(Stage2Errno.None, t.MakeYoung(GiB));
        Assert.False(t.Translate(GiB, S2AccessKind.Read).IsFault);
        Assert.True(t.TestClearYoung(GiB, 8 * KiB, clear: true));
        Assert.False(t.GetLeaf(GiB).Descriptor.AccessFlag);
        Assert.False(t.TestClearYoung(GiB, 8 * KiB, clear: false));
        Assert.Equal(Stage2Errno.EAGAIN, t.MakeYoung(GiB + 2 * MiB));
    }
}
