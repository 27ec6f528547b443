using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>The explanation names the step that decided the result, and classification helpers.</summary>
public class CombineExplanationTests
{
    private static CombineExplanation Explain(byte s1, byte s2, bool fwb, bool cd = false) =>
        AttributeCombiner.Explain(new CombineInput(s1, Shareability.ISH, s2, Shareability.ISH, fwb, cd));

    [Fact]
    public void Device_wins_over_normal_is_explained()
    {
        var e = Explain(0x0C, 0b0101, fwb: false);
        Assert.Contains(e.Steps, s => s.Kind == CombineStepKind.Combine && s.Text.Contains("Device beats Normal", StringComparison.Ordinal));
        Assert.Contains(e.Steps, s => s.Kind == CombineStepKind.Shareability && s.Text.Contains("Outer Shareable", StringComparison.Ordinal));
    }

    [Fact]
    public void Cd_after_fwb_is_explained()
    {
        var e = Explain(0xFF, 0b0110, fwb: true, cd: true);
        Assert.Contains(e.Steps, s => s.Kind == CombineStepKind.Control && s.Text.Contains("HCR_EL2.CD=1", StringComparison.Ordinal));
        Assert.Equal(0x44, e.Result.ParAttr);
    }

    [Fact]
    public void Null_explanation_list_is_the_fast_path()
    {
        var input = new CombineInput(0x77, Shareability.ISH, 0b1010, Shareability.ISH, false);
        Assert.Equal(AttributeCombiner.Combine(input), AttributeCombiner.Combine(input, null));
    }

    [Theory]
    [InlineData(0x04, 0b1111, false, true, false, true, false)]
    [InlineData(0xFF, 0b1111, false, false, true, false, false)]
    [InlineData(0x44, 0b1111, false, false, false, true, false)]
    [InlineData(0xFF, 0b0111, false, false, false, false, false)]
    [InlineData(0xF0, 0b1111, false, false, true, false, true)]
    [InlineData(0x00, 0b0110, true, false, true, false, false)]
    public void Classification(byte s1, int s2, bool fwb, bool device, bool wb, bool nc, bool tagged)
    {
        var r = AttributeCombiner.Combine(new CombineInput(s1, Shareability.ISH, (byte)s2, Shareability.ISH, fwb) { Features = AttributeFeatures.Mte2 });
        Assert.Equal(device, r.IsDevice);
        Assert.Equal(wb, r.IsWriteBackCacheable);
        Assert.Equal(nc, r.IsNonCacheable);
        Assert.Equal(tagged, r.IsTagged);
    }

    [Fact]
    public void Fwb_device_combines_with_stronger_S1_device_and_ifetch_from_device_is_NC()
    {
        var r = AttributeCombiner.Combine(new CombineInput(0x00, Shareability.ISH, 0b0011, Shareability.ISH, true));
        Assert.Equal(DeviceType.nGnRnE, r.Attributes.DeviceType);

        var fetch = AttributeCombiner.Combine(new CombineInput(0xFF, Shareability.ISH, 0b0001, Shareability.ISH, true) { Access = AccessKind.InstructionFetch });
        Assert.Equal(0x44, fetch.ParAttr);
    }

    [Fact]
    public void FnXs_with_FEAT_XS_reads_back_the_XS_form()
    {
        // S1 0xBB (XS=1) over S2 NC: with FnXS the result has XS=0, so PAR reads 0x40 rather than 0x44.
        var input = new CombineInput(0xBB, Shareability.ISH, 0b0101, Shareability.ISH, false) { Features = AttributeFeatures.Xs };
        Assert.Equal(0x44, AttributeCombiner.Combine(input).ParAttr);
        Assert.Equal(0x40, AttributeCombiner.Combine(input with { S2FnXs = true }).ParAttr);
        // Without FEAT_XS, FnXS does nothing.
        Assert.Equal(0x44, AttributeCombiner.Combine(input with { S2FnXs = true, Features = AttributeFeatures.None }).ParAttr);
        // PAR_EL1 with FEAT_XS (docs/arm-reference.md#combine): S1 0xFF (XS=0 with FEAT_XS) over S2 NC may read back 0x40.
        Assert.Equal(0x40, AttributeCombiner.Combine(input with { S1Attr = 0xFF }).ParAttr);
    }
}

/// <summary>The kernel model calls combine for every guest access: the fast path must not allocate.</summary>
public class CombineAllocationTests
{
    [Fact]
    public void Fast_path_does_not_allocate()
    {
        var inputs = new List<CombineInput>();
        foreach (var fwb in new[] { false, true })
        {
            for (var m = 0; m < 16; m++)
            {
                foreach (var s1 in new byte[] { 0x00, 0x04, 0x0C, 0x44, 0x77, 0xAA, 0xF0, 0xFF, 0x10 })
                {
                    inputs.Add(new CombineInput(s1, Shareability.ISH, (byte)m, Shareability.Reserved, fwb, m % 3 == 0)
                    {
                        Features = AttributeFeatures.Mte2 | AttributeFeatures.Xs | AttributeFeatures.MtePerm,
                        Access = m % 5 == 0 ? AccessKind.InstructionFetch : AccessKind.Data,
                        SctlrM = m != 7,
                    });
                }
            }
        }

        var sink = 0;
        foreach (var input in inputs)
        {
            sink += AttributeCombiner.Combine(input).ParAttr;
        }

        // The runtime may allocate on this thread while it re-compiles a hot method (tiering, OSR) during a pass, so
        // a pass is measured several times: an allocation in the fast path itself shows in every pass.
        var fewest = long.MaxValue;
        for (var pass = 0; pass < 5 && fewest != 0; pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var round = 0; round < 10; round++)
            {
                foreach (var input in inputs)
                {
                    var r = AttributeCombiner.Combine(input);
                    sink += r.ParAttr + (r.IsDevice ? 1 : 0) + (r.IsWriteBackCacheable ? 1 : 0);
                }
            }

            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, fewest);
        Assert.NotEqual(-1, sink);
    }
}
