using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>The pgtable.c entry points the kernel model uses: stage2_set_prot_attr (rule 14), VM creation, ageing.</summary>
public class KvmProtTests
{
    [Theory]
    [InlineData(KvmPgtableProt.Device | KvmPgtableProt.NormalNc | KvmPgtableProt.R)]
    [InlineData(KvmPgtableProt.Device | KvmPgtableProt.X | KvmPgtableProt.R)]
    [InlineData(KvmPgtableProt.NormalNc | KvmPgtableProt.X | KvmPgtableProt.R)]
    public void Rule14_forbidden_prot_combinations_are_EINVAL(KvmPgtableProt prot)
    {
        var t = Create();
        Assert.Equal(Stage2Errno.EINVAL, t.TryGetLeafAttributes(prot, out _));
        Assert.Equal(Stage2Errno.EINVAL, t.Map(GiB, 4 * KiB, 0x1000_0000, prot));
        Assert.False(t.GetLeaf(GiB).IsValid);
    }

    [Theory]
    [InlineData(false, KvmPgtableProt.RW, 0xF)]
    [InlineData(true, KvmPgtableProt.RW, 0x6)]
    [InlineData(false, KvmPgtableProt.RW | KvmPgtableProt.Device, 0x1)]
    [InlineData(true, KvmPgtableProt.RW | KvmPgtableProt.Device, 0x1)]
    [InlineData(false, KvmPgtableProt.RW | KvmPgtableProt.NormalNc, 0x5)]
    [InlineData(true, KvmPgtableProt.RW | KvmPgtableProt.NormalNc, 0x5)]
    public void Rule14_memory_type_follows_the_prot_and_FWB(bool fwb, KvmPgtableProt prot, int memAttr)
    {
        var t = Create(fwb: fwb);
        Assert.Equal(Stage2Errno.None, t.Map(GiB, 4 * KiB, 0x1000_0000, prot));
        var d = t.GetLeaf(GiB).Descriptor;
        Assert.Equal(memAttr, d.MemAttr);
        Assert.Equal(S2Shareability.InnerShareable, d.Shareability);
        Assert.True(d.AccessFlag);
        Assert.Equal(S2Permissions.ReadWrite, d.Permissions); // XN set: no X asked
        Assert.Equal(1UL << 54, d.Raw & (3UL << 53));
    }

    [Fact]
    public void Software_prot_bits_land_in_bits_58_to_55()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, KvmPgtableProt.R | KvmPgtableProt.Sw1 | KvmPgtableProt.Sw3);
        Assert.Equal(0b1010, t.GetLeaf(GiB).Descriptor.SoftwareBits);
    }

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
