using CsCheck;
using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>Rules of docs/arm-reference.md#combine that hold over the whole input space.</summary>
public class CombinePropertyTests
{
    private static readonly Gen<Shareability> GenSh = Gen.Int[0, 3].Select(i => (Shareability)i);

    /// <summary>Any input: every byte, every MemAttr, every SH (including reserved), every control bit and feature set.</summary>
    private static readonly Gen<CombineInput> GenInput =
        Gen.Select(Gen.Byte, GenSh, Gen.Int[0, 15], GenSh, Gen.Bool, Gen.Bool, Gen.Int[0, 255], Gen.Int[0, 7])
            .Select(t => new CombineInput(t.Item1, t.Item2, (byte)t.Item3, t.Item4, t.Item5, t.Item6)
            {
                SctlrM = (t.Item7 & 1) == 0,
                SctlrC = (t.Item7 & 2) == 0,
                SctlrI = (t.Item7 & 4) == 0,
                HcrDc = (t.Item7 & 8) != 0,
                HcrDct = (t.Item7 & 16) != 0,
                HcrId = (t.Item7 & 32) != 0,
                Access = (t.Item7 & 64) != 0 ? AccessKind.InstructionFetch : AccessKind.Data,
                S2FnXs = (t.Item7 & 128) != 0,
                Features = (AttributeFeatures)t.Item8,
            });

    /// <summary>Plain data accesses with stage 1 on and cacheable: the stage-1 attribute is the MAIR byte.</summary>
    private static readonly Gen<CombineInput> GenPlainInput =
        Gen.Select(Gen.Byte, GenSh, Gen.Int[0, 15], GenSh, Gen.Bool, Gen.Bool, Gen.Int[0, 7])
            .Select(t => new CombineInput(t.Item1, t.Item2, (byte)t.Item3, t.Item4, t.Item5, t.Item6) { Features = (AttributeFeatures)t.Item7 });

    private static int Rank(in MemoryAttributes a, bool inner) =>
        a.IsDevice ? 0 : (int)(inner ? a.Inner.Cacheability : a.Outer.Cacheability);

    [Fact]
    public void Fwb0_result_is_never_more_cacheable_than_either_stage_per_half()
    {
        GenPlainInput.Select(i => i with { Fwb = false }).Sample(input =>
        {
            var r = AttributeCombiner.Combine(input).Attributes;
            var s1 = Mair.Decode(input.S1Attr, input.Features).Attributes;
            var s2 = Stage2MemAttr.DecodeNoFwb(input.S2MemAttr, input.Features).Attributes;
            foreach (var inner in (ReadOnlySpan<bool>)[true, false])
            {
                if (Rank(r, inner) > Rank(s1, inner) || Rank(r, inner) > Rank(s2, inner))
                {
                    return false;
                }
            }

            return true;
        });
    }

    [Fact]
    public void Fwb0_device_beats_normal_and_the_stronger_device_type_wins()
    {
        GenPlainInput.Select(i => i with { Fwb = false }).Sample(input =>
        {
            var r = AttributeCombiner.Combine(input).Attributes;
            var s1 = Mair.Decode(input.S1Attr, input.Features).Attributes;
            var s2 = Stage2MemAttr.DecodeNoFwb(input.S2MemAttr, input.Features).Attributes;
            if (!s1.IsDevice && !s2.IsDevice)
            {
                return r.IsNormal;
            }

            var expected = s1.IsDevice && s2.IsDevice
                ? (DeviceType)Math.Min((int)s1.DeviceType, (int)s2.DeviceType)
                : s1.IsDevice ? s1.DeviceType : s2.DeviceType;
            return r.IsDevice && r.DeviceType == expected;
        });
    }

    [Fact]
    public void Fwb_0110_gives_Normal_write_back_unless_HCR_EL2_CD()
    {
        // Any stage-1 state (Device, NC, MMU off, caches off, DC), data access; 0b1110 too when MemAttr[3] is RES0.
        GenInput.Select(Gen.Bool, (i, bit3) => i with
        {
            Fwb = true,
            S2MemAttr = (byte)(bit3 ? 0b1110 : 0b0110),
            Access = AccessKind.Data,
            Features = i.Features & ~AttributeFeatures.MtePerm,
        }).Sample(input =>
        {
            var r = AttributeCombiner.Combine(input);
            return input.HcrCd
                ? r.Attributes == MemoryAttributes.NormalNonCacheable(r.Attributes.Xs) && r.Shareability == Shareability.OSH
                : r.IsWriteBackCacheable && !r.IsDevice;
        });
    }

    [Fact]
    public void Device_or_NC_NC_result_is_always_Outer_Shareable()
    {
        GenInput.Sample(input =>
        {
            var r = AttributeCombiner.Combine(input);
            return !r.IsNonCacheable || r.Shareability == Shareability.OSH;
        });
    }

    [Fact]
    public void Cacheable_result_keeps_the_wider_of_the_two_SH_fields()
    {
        GenPlainInput.Sample(input =>
        {
            var r = AttributeCombiner.Combine(input);
            return r.IsNonCacheable || r.Shareability == ShareabilityRules.Combine(input.S1Sh, input.S2Sh);
        });
    }

    [Fact]
    public void Fwb_0111_returns_valid_S1_unchanged()
    {
        // A valid byte for the feature set, chosen directly (not by filtering), any SH.
        var genValid = Gen.Int[0, 3].SelectMany(f =>
        {
            var features = (AttributeFeatures)f;
            var valid = Enumerable.Range(0, 256).Select(b => (byte)b).Where(b => Mair.IsValid(b, features)).ToArray();
            return Gen.Int[0, valid.Length - 1].Select(i => (Features: features, Attr: valid[i]));
        });
        Gen.Select(genValid, GenSh, GenSh).Sample((v, sh1, sh2) =>
        {
            var input = new CombineInput(v.Attr, sh1, 0b0111, sh2, Fwb: true) { Features = v.Features };
            var r = AttributeCombiner.Combine(input);
            return r.ParAttr == input.S1Attr
                && r.Attributes == Mair.Decode(input.S1Attr, input.Features).Attributes
                && (r.Diagnostics & (CombineDiagnostics.S1AttrInvalid | CombineDiagnostics.S2MemAttrReserved)) == 0;
        });
    }

    [Fact]
    public void Tagged_result_needs_tagged_S1_and_WB_RWA()
    {
        GenInput.Sample(input =>
        {
            var r = AttributeCombiner.Combine(input);
            return !r.IsTagged || r.Attributes.IsTaggable;
        });
    }

    [Fact]
    public void Result_encodes_to_a_valid_MAIR_byte_that_decodes_back_to_it()
    {
        // PAR_EL1.ATTR is in MAIR format: decoding it (with the CPU's features) gives the result back.
        GenInput.Where(i => (i.Features & AttributeFeatures.MtePerm) == 0).Sample(input =>
        {
            var r = AttributeCombiner.Combine(input);
            var d = Mair.Decode(r.ParAttr, input.Features | AttributeFeatures.Mte2);
            return d.IsValid && d.Attributes.Tagged == r.IsTagged && d.Attributes.IsDevice == r.IsDevice
                && d.Attributes.Inner == r.Attributes.Inner && d.Attributes.Outer == r.Attributes.Outer
                && d.Attributes.DeviceType == r.Attributes.DeviceType;
        });
    }

    [Fact]
    public void Combine_never_throws()
    {
        GenInput.Sample(input =>
        {
            _ = AttributeCombiner.Combine(input);
            _ = AttributeCombiner.Explain(input);
        });
    }

    [Fact]
    public void Fast_path_and_explaining_path_agree_exhaustively()
    {
        // Every valid MAIR byte x every non-reserved MemAttr x FWB x CD x SH pairs (FEAT_XS and MTE2 on, so all 236 bytes).
        const AttributeFeatures features = AttributeFeatures.Xs | AttributeFeatures.Mte2;
        var shs = new[] { Shareability.NSH, Shareability.ISH, Shareability.OSH };
        var steps = new List<CombineStep>();
        var checkedCount = 0;
        for (var b = 0; b < 256; b++)
        {
            if (!Mair.IsValid((byte)b, features))
            {
                continue;
            }

            foreach (var fwb in new[] { false, true })
            {
                for (var m = 0; m < 16; m++)
                {
                    if (Stage2MemAttr.IsReserved((byte)m, fwb, features))
                    {
                        continue;
                    }

                    foreach (var cd in new[] { false, true })
                    {
                        foreach (var sh1 in shs)
                        {
                            foreach (var sh2 in shs)
                            {
                                var input = new CombineInput((byte)b, sh1, (byte)m, sh2, fwb, cd) { Features = features };
                                steps.Clear();
                                var fast = AttributeCombiner.Combine(input);
                                var explained = AttributeCombiner.Combine(input, steps);
                                if (fast != explained || steps.Count < 3 || steps[^1].Kind != CombineStepKind.Result)
                                {
                                    Assert.Fail($"disagree for {input}: fast {fast}, explained {explained}, {steps.Count} steps");
                                }

                                checkedCount++;
                            }
                        }
                    }
                }
            }
        }

        // 236 bytes x (13 FWB=0 + 7 FWB=1 MemAttrs) x 2 CD x 9 SH pairs.
        Assert.Equal(236 * 20 * 2 * 9, checkedCount);
    }
}
