using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>The Arm columns of the main and control-bit vectors (docs/arm-reference.md#vectors), read from Vectors/*.csv.</summary>
public class SpecVectorTests
{
    public static TheoryData<string> MainIds() => Ids("main-vectors.csv");

    public static TheoryData<string> ControlIds() => Ids("control-vectors.csv");

    private static TheoryData<string> Ids(string file)
    {
        var data = new TheoryData<string>();
        foreach (var row in VectorFile.Read(file))
        {
            data.Add(row["id"]);
        }

        return data;
    }

    [Fact]
    public void Vector_files_hold_82_main_and_12_control_rows()
    {
        Assert.Equal(82, VectorFile.Read("main-vectors.csv").Count);
        Assert.Equal(12, VectorFile.Read("control-vectors.csv").Count);
    }

    [Theory]
    [MemberData(nameof(MainIds))]
    public void Main_vector_matches_arm_columns(string id)
    {
        var row = VectorFile.Read("main-vectors.csv").Single(r => r["id"] == id);
        var input = new CombineInput(
            VectorFile.Hex(row["s1_mair"]), VectorFile.Sh(row["s1_sh"]),
            VectorFile.Bin(row["s2_memattr"]), VectorFile.Sh(row["s2_sh"]),
            Fwb: row["fwb"] == "1", HcrCd: row["hcr_cd"] == "1")
        {
            // The vectors use 0xF0 as Tagged Normal, so the CPU has FEAT_MTE2 (and no FEAT_XS, as the vector file states).
            Features = AttributeFeatures.Mte2,
        };

        var result = AttributeCombiner.Combine(input);

        Assert.Equal(row["arm_attr"], $"0x{result.ParAttr:X2}");
        Assert.Equal(row["arm_type"], result.Description);
        Assert.Equal(row["arm_sh"], result.Shareability.ToString());
        Assert.Equal(CombineDiagnostics.None, result.Diagnostics);
    }

    [Theory]
    [MemberData(nameof(ControlIds))]
    public void Control_vector_matches_arm_columns(string id)
    {
        var row = VectorFile.Read("control-vectors.csv").Single(r => r["id"] == id);
        var input = ControlInput(id, row);

        var result = AttributeCombiner.Combine(input);

        Assert.Equal(row["arm_attr"], $"0x{result.ParAttr:X2}");
        Assert.Equal(row["arm_sh"], result.Shareability.ToString());
        // C5 spells the tagged type "Normal-Tagged WB.RWA"; every other row uses the full
        // "Normal-Tagged oWB.RWA iWB.RWA", which is what the model prints.
        var expectedType = row["arm_type"] == "Normal-Tagged WB.RWA" ? "Normal-Tagged oWB.RWA iWB.RWA" : row["arm_type"];
        Assert.Equal(expectedType, result.Description);
    }

    [Theory]
    [MemberData(nameof(ControlIds))]
    public void Control_vector_stage1_output_matches_s1_eff_column(string id)
    {
        // The s1_eff(arm) column is what stage 1 hands to the combine step. Check it by combining with an S2 that
        // passes stage 1 through (FWB=1 MemAttr 0b0111), with no HCR_EL2.CD/ID.
        var row = VectorFile.Read("control-vectors.csv").Single(r => r["id"] == id);
        var input = ControlInput(id, row) with { S2MemAttr = 0b0111, Fwb = true, HcrCd = false, HcrId = false, S2Sh = Shareability.NSH };

        var result = AttributeCombiner.Combine(input);

        Assert.Equal(row["s1_eff(arm)"], $"0x{result.ParAttr:X2}");
    }

    /// <summary>The control bits each control-bit vector describes (the scenario column is prose, so it is mapped here).</summary>
    private static CombineInput ControlInput(string id, Dictionary<string, string> row)
    {
        var fwb = row["fwb"] == "1";
        var s2 = VectorFile.Bin(row["s2_memattr"]);
        var s2Sh = VectorFile.Sh(row["s2_sh"]);
        var s1Sh = VectorFile.Sh(row["s1_sh"]);
        var baseInput = new CombineInput(0xFF, s1Sh, s2, s2Sh, fwb) { Features = AttributeFeatures.Mte2 };
        return id switch
        {
            "C1" or "C2" => baseInput with { SctlrM = false },
            "C3" or "C4" or "C6" => baseInput with { HcrDc = true },
            "C5" => baseInput with { HcrDc = true, HcrDct = true },
            "C7" => baseInput with { SctlrM = false, SctlrI = true, Access = AccessKind.InstructionFetch },
            "C8" => baseInput with { SctlrM = false, SctlrI = false, Access = AccessKind.InstructionFetch },
            "C9" or "C10" => baseInput with { SctlrC = false },
            "C11" => baseInput with { HcrId = true, Access = AccessKind.InstructionFetch },
            "C12" => baseInput with { HcrCd = true },
            _ => throw new InvalidOperationException($"unmapped control vector {id}"),
        };
    }
}
