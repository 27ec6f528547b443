using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>
/// docs/arm-reference.md#vectors: reserved and implementation-choice encodings. These are not architectural pass/fail vectors; they pin
/// down the choices S2Lab documents (Stage2MemAttrIssue, ShareabilityRules.Resolve): FWB=0 reserved inner "00" is NC,
/// FWB=1 0b100 follows the ASL's 0b101 branch, MemAttr[3] without FEAT_MTE_PERM is RES0 and ignored.
/// Defaults of the reserved-encoding vectors: S1 = 0xFF ISH, S2 SH = ISH.
/// </summary>
public class ReservedEncodingTests
{
    /// <summary>id -> (S1 byte, features, expected PAR attr, expected SH, reserved diagnostic expected).</summary>
    private static readonly Dictionary<string, (byte S1, AttributeFeatures Features, byte Attr, Shareability Sh, bool Reserved)> Choices = new()
    {
        // R1: inner reserved, S2Lab picks NC: oNC iNC, so the result is NC/NC and Outer Shareable.
        ["R1"] = (0xFF, AttributeFeatures.None, 0x44, Shareability.OSH, true),
        // R2: oWT + inner taken as NC.
        ["R2"] = (0xFF, AttributeFeatures.None, 0xB4, Shareability.ISH, true),
        // R3: oWB + inner taken as NC.
        ["R3"] = (0xFF, AttributeFeatures.None, 0xF4, Shareability.ISH, true),
        // R4: the ASL branch of 0b101: NC/NC over S1 Normal.
        ["R4"] = (0xFF, AttributeFeatures.None, 0x44, Shareability.OSH, true),
        // R5: bit 3 RES0 without MTE_PERM: force WB.
        ["R5"] = (0xFF, AttributeFeatures.None, 0xFF, Shareability.ISH, true),
        // R6: bit 3 RES0 without MTE_PERM: use S1.
        ["R6"] = (0xFF, AttributeFeatures.None, 0xFF, Shareability.ISH, true),
        // R7: bit 3 ignored: like 0b101.
        ["R7"] = (0xFF, AttributeFeatures.None, 0x44, Shareability.OSH, true),
        // R8: FEAT_XS NC (0x40) over S2 WB: NC/NC with XS=0 reads back 0x40 and is forced OSH (QEMU's TODO).
        ["R8"] = (0x40, AttributeFeatures.Xs, 0x40, Shareability.OSH, false),
    };

    public static TheoryData<string> Ids()
    {
        var data = new TheoryData<string>();
        foreach (var row in VectorFile.Read("reserved-encodings.csv"))
        {
            data.Add(row["id"]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public void Reserved_row_gets_the_documented_choice(string id)
    {
        var row = VectorFile.Read("reserved-encodings.csv").Single(r => r["id"] == id);
        var (s1, features, attr, sh, reserved) = Choices[id];
        var memAttr = VectorFile.Bin(row["s2_memattr"][..6]);
        var input = new CombineInput(s1, Shareability.ISH, memAttr, Shareability.ISH, Fwb: row["fwb"] == "1") { Features = features };

        var result = AttributeCombiner.Combine(input);

        Assert.Equal($"0x{attr:X2}", $"0x{result.ParAttr:X2}");
        Assert.Equal(sh, result.Shareability);
        Assert.Equal(reserved, (result.Diagnostics & CombineDiagnostics.S2MemAttrReserved) != 0);
    }

    [Fact]
    public void R1_with_MTE_PERM_is_WB_and_NoTagAccess_for_tagged_S1()
    {
        var features = AttributeFeatures.MtePerm | AttributeFeatures.Mte2;
        var untagged = AttributeCombiner.Combine(new CombineInput(0xFF, Shareability.ISH, 0b0100, Shareability.ISH, false) { Features = features });
        Assert.Equal(0xFF, untagged.ParAttr);
        Assert.False(untagged.NoTagAccess);
        Assert.Equal(CombineDiagnostics.None, untagged.Diagnostics);

        var tagged = AttributeCombiner.Combine(new CombineInput(0xF0, Shareability.ISH, 0b0100, Shareability.ISH, false) { Features = features });
        Assert.True(tagged.IsTagged);
        Assert.True(tagged.NoTagAccess);
        Assert.Equal(0xE0, tagged.ParAttr);
    }

    [Theory]
    [InlineData(0b1110)]
    [InlineData(0b1111)]
    public void R5_R6_with_MTE_PERM_mark_a_tagged_result_NoTagAccess(int memAttr)
    {
        var features = AttributeFeatures.MtePerm | AttributeFeatures.Mte2;
        var r = AttributeCombiner.Combine(new CombineInput(0xF0, Shareability.ISH, (byte)memAttr, Shareability.ISH, true) { Features = features });
        Assert.True(r.NoTagAccess);
        Assert.Equal(0xE0, r.ParAttr);
        Assert.Equal(CombineDiagnostics.None, r.Diagnostics);
    }

    [Fact]
    public void R4_keeps_S1_Device_as_the_ASL_0b101_branch_does()
    {
        var r = AttributeCombiner.Combine(new CombineInput(0x04, Shareability.ISH, 0b0100, Shareability.ISH, true));
        Assert.Equal(0x04, r.ParAttr);
    }

    [Fact]
    public void Reserved_SH_01_is_taken_as_OSH_and_reported()
    {
        var r = AttributeCombiner.Combine(new CombineInput(0xFF, Shareability.NSH, 0b1111, Shareability.Reserved, false));
        Assert.Equal(Shareability.OSH, r.Shareability);
        Assert.Equal(CombineDiagnostics.S2ShReserved, r.Diagnostics);
    }

    [Fact]
    public void Unpredictable_S1_byte_is_reported_and_resolved()
    {
        // 0x10: RESMAIR (inner 0000); S2Lab uses outer WT-transient-WA, inner NC.
        var r = AttributeCombiner.Combine(new CombineInput(0x10, Shareability.ISH, 0b1111, Shareability.ISH, false));
        Assert.Equal(CombineDiagnostics.S1AttrInvalid, r.Diagnostics);
        Assert.Equal(Cacheability.NonCacheable, r.Attributes.Inner.Cacheability);
    }
}
