using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>The pgtable.c entry points the kernel model uses: ageing (VM creation from a CPU model is Kernel.Tests' KvmStage2Tests).</summary>
public class KvmEntryPointTests
{
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
