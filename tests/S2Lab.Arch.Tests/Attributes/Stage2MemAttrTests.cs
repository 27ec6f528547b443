using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>Stage-2 MemAttr decoding, FWB=0 and FWB=1 (docs/arm-reference.md#s2-memattr).</summary>
public class Stage2MemAttrTests
{
    [Theory]
    [InlineData(0b0000, "Device-nGnRnE")]
    [InlineData(0b0001, "Device-nGnRE")]
    [InlineData(0b0010, "Device-nGRE")]
    [InlineData(0b0011, "Device-GRE")]
    [InlineData(0b0101, "Normal oNC iNC")]
    [InlineData(0b0110, "Normal oNC iWT.RWA")]
    [InlineData(0b0111, "Normal oNC iWB.RWA")]
    [InlineData(0b1001, "Normal oWT.RWA iNC")]
    [InlineData(0b1010, "Normal oWT.RWA iWT.RWA")]
    [InlineData(0b1011, "Normal oWT.RWA iWB.RWA")]
    [InlineData(0b1101, "Normal oWB.RWA iNC")]
    [InlineData(0b1110, "Normal oWB.RWA iWT.RWA")]
    [InlineData(0b1111, "Normal oWB.RWA iWB.RWA")]
    public void NoFwb_defined_encodings_follow_the_2_1_table(int memAttr, string meaning)
    {
        var d = Stage2MemAttr.DecodeNoFwb((byte)memAttr, AttributeFeatures.None);
        Assert.Equal(Stage2MemAttrIssue.None, d.Issue);
        Assert.Equal(meaning, d.Attributes.Description);
        Assert.False(d.NoTagAccess);
    }

    [Theory]
    [InlineData(0b0100, "Normal oNC iNC")]
    [InlineData(0b1000, "Normal oWT.RWA iNC")]
    [InlineData(0b1100, "Normal oWB.RWA iNC")]
    public void NoFwb_reserved_inner_00_is_reported_and_taken_as_NC(int memAttr, string choice)
    {
        var d = Stage2MemAttr.DecodeNoFwb((byte)memAttr, AttributeFeatures.None);
        Assert.Equal(Stage2MemAttrIssue.InnerCacheabilityReserved, d.Issue);
        Assert.Equal(choice, d.Attributes.Description);
    }

    [Fact]
    public void NoFwb_0100_with_MTE_PERM_is_WB_with_NoTagAccess()
    {
        var d = Stage2MemAttr.DecodeNoFwb(0b0100, AttributeFeatures.MtePerm);
        Assert.Equal(Stage2MemAttrIssue.None, d.Issue);
        Assert.True(d.NoTagAccess);
        Assert.True(d.Attributes.IsWriteBack);
    }

    [Theory]
    [InlineData(0b000, FwbAction.Device, DeviceType.nGnRnE)]
    [InlineData(0b001, FwbAction.Device, DeviceType.nGnRE)]
    [InlineData(0b010, FwbAction.Device, DeviceType.nGRE)]
    [InlineData(0b011, FwbAction.Device, DeviceType.GRE)]
    [InlineData(0b101, FwbAction.NonCacheableUnlessS1Device, null)]
    [InlineData(0b110, FwbAction.ForceWriteBack, null)]
    [InlineData(0b111, FwbAction.UseStage1, null)]
    public void Fwb_defined_encodings_follow_the_2_2_table(int memAttr, FwbAction action, DeviceType? device)
    {
        var d = Stage2MemAttr.DecodeFwb((byte)memAttr, AttributeFeatures.None);
        Assert.Equal(Stage2MemAttrIssue.None, d.Issue);
        Assert.Equal(action, d.Action);
        if (device is { } t)
        {
            Assert.Equal(t, d.DeviceType);
        }
    }

    [Fact]
    public void Fwb_100_is_reserved_and_follows_the_101_branch()
    {
        var d = Stage2MemAttr.DecodeFwb(0b0100, AttributeFeatures.None);
        Assert.Equal(Stage2MemAttrIssue.FwbReserved100, d.Issue);
        Assert.Equal(FwbAction.NonCacheableUnlessS1Device, d.Action);
    }

    [Theory]
    [InlineData(0b1000)]
    [InlineData(0b1011)]
    [InlineData(0b1101)]
    [InlineData(0b1110)]
    [InlineData(0b1111)]
    public void Fwb_bit3_without_MTE_PERM_is_RES0_and_does_not_change_the_action(int memAttr)
    {
        var with = Stage2MemAttr.DecodeFwb((byte)memAttr, AttributeFeatures.None);
        var without = Stage2MemAttr.DecodeFwb((byte)(memAttr & 0b0111), AttributeFeatures.None);
        Assert.Equal(Stage2MemAttrIssue.FwbBit3Res0, with.Issue);
        Assert.Equal(without.Action, with.Action);
        Assert.False(with.NoTagAccess);
    }

    [Theory]
    [InlineData(0b1110, FwbAction.ForceWriteBack)]
    [InlineData(0b1111, FwbAction.UseStage1)]
    public void Fwb_111x_with_MTE_PERM_marks_NoTagAccess(int memAttr, FwbAction action)
    {
        var d = Stage2MemAttr.DecodeFwb((byte)memAttr, AttributeFeatures.MtePerm);
        Assert.Equal(Stage2MemAttrIssue.None, d.Issue);
        Assert.True(d.NoTagAccess);
        Assert.Equal(action, d.Action);
    }

    [Fact]
    public void Descriptor_bits_5_to_2_hold_MemAttr()
    {
        Assert.Equal(0b0110, new S2Descriptor(0b0110UL << 2 | 0x3 | 1UL << 10).MemAttr);
        Assert.Equal(0x3CUL, new S2Descriptor(0).WithMemAttr(0xF).Raw);
        Assert.Equal(0x3CUL, S2DescriptorBits.MemAttrMask);
        Assert.Equal("0b0101", Stage2MemAttr.Format(5));
    }
}
