using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Tests.Arm64;

/// <summary>The combine explanation for Linux's own encodings (moved from Arch.Tests' CombineExplanationTests).</summary>
public class LinuxCombineExplanationTests
{
    private static CombineExplanation Explain(byte s1, byte s2, bool fwb, bool cd = false) =>
        AttributeCombiner.Explain(new CombineInput(s1, Shareability.ISH, s2, Shareability.ISH, fwb, cd));

    [Fact]
    public void Fwb_force_wb_over_device_explains_itself()
    {
        var e = Explain(LinuxMair.MAIR_ATTR_DEVICE_nGnRE, KvmS2MemAttr.MT_S2_FWB_NORMAL, fwb: true);
        Assert.Contains(e.Steps, s => s.Kind == CombineStepKind.Combine
            && s.Text.Contains("S2 MemAttr 0b0110 under FWB forces Normal write-back over S1 Device-nGnRE", StringComparison.Ordinal));
        Assert.Equal(0xFF, e.Result.ParAttr);
    }
}
