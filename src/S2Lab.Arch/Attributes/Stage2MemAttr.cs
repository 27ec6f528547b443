namespace S2Lab.Arch.Attributes;

/// <summary>Why a stage-2 MemAttr value is not a plain architectural encoding.</summary>
public enum Stage2MemAttrIssue
{
    /// <summary>A defined encoding.</summary>
    None,

    /// <summary>
    /// FWB=0, MemAttr[1:0] = 0b00 with a Normal outer (0b0100, 0b1000, 0b1100): the inner cacheability is reserved,
    /// CONSTRAINED UNPREDICTABLE among NC, WT and WB. S2Lab chooses <b>NC</b>, the most restrictive, so that combining
    /// never yields something more cacheable than either stage. (0b0100 with FEAT_MTE_PERM is defined: NoTagAccess.)
    /// </summary>
    InnerCacheabilityReserved,

    /// <summary>
    /// FWB=1, MemAttr[2:0] = 0b100: reserved. S2Lab follows the ASL, whose <c>AArch64.S2ApplyFWBMemAttrs</c> falls into
    /// the 0b101 branch: Normal iNC oNC unless stage 1 is Device.
    /// </summary>
    FwbReserved100,

    /// <summary>
    /// FWB=1, MemAttr[3] set where it is RES0 (without FEAT_MTE_PERM, or with it but MemAttr[2:1] != 0b11).
    /// S2Lab ignores the bit: the type comes from MemAttr[2:0].
    /// </summary>
    FwbBit3Res0,
}

/// <summary>What a stage-2 MemAttr does to the stage-1 attributes under HCR_EL2.FWB=1 (<c>AArch64.S2ApplyFWBMemAttrs</c>).</summary>
public enum FwbAction
{
    /// <summary>MemAttr[2] = 0: Device <c>dd</c>, or the stronger of it and a stage-1 Device type.</summary>
    Device,

    /// <summary>0b101 (and reserved 0b100): Normal iNC oNC, unless stage 1 is Device (then stage 1 unchanged).</summary>
    NonCacheableUnlessS1Device,

    /// <summary>0b110: Normal iWB oWB even over stage-1 Device or NC; hints from cacheable stage-1 halves, else RWA.</summary>
    ForceWriteBack,

    /// <summary>0b111: the stage-1 attributes unchanged.</summary>
    UseStage1,
}

/// <summary>A stage-2 MemAttr decoded with FWB=0 (docs/arm-reference.md#s2-memattr, <c>S2DecodeMemAttrs</c>).</summary>
/// <param name="Attributes">
/// The stage-2 attribute. Stage 2 has no hints: cacheable halves are reported RWA non-transient, and the combine step
/// takes hints from stage 1.
/// </param>
/// <param name="NoTagAccess">FEAT_MTE_PERM NoTagAccess (0b0100 with the feature).</param>
/// <param name="Issue">A reserved encoding, and the choice made for it.</param>
public readonly record struct Stage2NoFwbDecoding(MemoryAttributes Attributes, bool NoTagAccess, Stage2MemAttrIssue Issue);

/// <summary>A stage-2 MemAttr decoded with FWB=1 (docs/arm-reference.md#s2-memattr).</summary>
/// <param name="Action">What the value does to stage 1.</param>
/// <param name="DeviceType">The device type for <see cref="FwbAction.Device"/>.</param>
/// <param name="NoTagAccess">MemAttr[3:1] = 0b111 with FEAT_MTE_PERM: a tagged result is marked NoTagAccess.</param>
/// <param name="Issue">A reserved encoding, and the choice made for it.</param>
public readonly record struct Stage2FwbDecoding(FwbAction Action, DeviceType DeviceType, bool NoTagAccess, Stage2MemAttrIssue Issue);

/// <summary>Stage-2 leaf descriptor MemAttr[3:0] (descriptor bits [5:2]).</summary>
public static class Stage2MemAttr
{
    /// <summary>"0b0110".</summary>
    public static string Format(byte memAttr) => "0b" + Convert.ToString(memAttr & 0xF, 2).PadLeft(4, '0');

    /// <summary>True if <paramref name="memAttr"/> (bits [3:0]) is a defined, non-reserved encoding for this FWB setting.</summary>
    public static bool IsReserved(byte memAttr, bool fwb, AttributeFeatures features) => fwb
        ? DecodeFwb(memAttr, features).Issue != Stage2MemAttrIssue.None
        : DecodeNoFwb(memAttr, features).Issue != Stage2MemAttrIssue.None;

    /// <summary>
    /// Decodes with HCR_EL2.FWB=0: MemAttr[3:2] = 00 is Device <c>DecodeDevice(MemAttr[1:0])</c>; otherwise Normal with
    /// outer = MemAttr[3:2], inner = MemAttr[1:0], each 01 NC, 10 WT, 11 WB (00 reserved: see
    /// <see cref="Stage2MemAttrIssue.InnerCacheabilityReserved"/>). Only bits [3:0] are read.
    /// </summary>
    public static Stage2NoFwbDecoding DecodeNoFwb(byte memAttr, AttributeFeatures features)
    {
        var outerBits = (memAttr >> 2) & 0b11;
        var innerBits = memAttr & 0b11;
        if (outerBits == 0)
        {
            return new(MemoryAttributes.Device((DeviceType)innerBits), false, Stage2MemAttrIssue.None);
        }

        if (innerBits == 0)
        {
            if (outerBits == 0b01 && (features & AttributeFeatures.MtePerm) != 0)
            {
                // FEAT_MTE_PERM: 0b0100 is Normal iWB oWB with NoTagAccess.
                return new(MemoryAttributes.NormalWriteBack, true, Stage2MemAttrIssue.None);
            }

            return new(MemoryAttributes.Normal(CacheAttributes.NonCacheable, Half(outerBits)), false, Stage2MemAttrIssue.InnerCacheabilityReserved);
        }

        return new(MemoryAttributes.Normal(Half(innerBits), Half(outerBits)), false, Stage2MemAttrIssue.None);
    }

    /// <summary>
    /// Decodes with HCR_EL2.FWB=1: MemAttr[2:0] selects the action (0dd Device, 101 NC unless S1 Device, 110 force WB,
    /// 111 use S1; 100 reserved, treated as 101 as in the ASL). MemAttr[3] never changes the type: it is RES0 without
    /// FEAT_MTE_PERM, and with it 0b111x marks NoTagAccess.
    /// </summary>
    public static Stage2FwbDecoding DecodeFwb(byte memAttr, AttributeFeatures features)
    {
        var low = memAttr & 0b111;
        var bit3 = (memAttr & 0b1000) != 0;
        var hasMtePerm = (features & AttributeFeatures.MtePerm) != 0;
        var noTagAccess = hasMtePerm && (memAttr & 0b1110) == 0b1110;

        var issue = Stage2MemAttrIssue.None;
        if (bit3 && !noTagAccess)
        {
            issue = Stage2MemAttrIssue.FwbBit3Res0;
        }

        if (low == 0b100)
        {
            issue = Stage2MemAttrIssue.FwbReserved100;
        }

        var action = low switch
        {
            0b111 => FwbAction.UseStage1,
            0b110 => FwbAction.ForceWriteBack,
            0b101 or 0b100 => FwbAction.NonCacheableUnlessS1Device,
            _ => FwbAction.Device,
        };
        return new(action, (DeviceType)(low & 0b11), noTagAccess, issue);
    }

    private static CacheAttributes Half(int bits) => bits switch
    {
        0b01 => CacheAttributes.NonCacheable,
        0b10 => new CacheAttributes(Cacheability.WriteThrough),
        _ => new CacheAttributes(Cacheability.WriteBack),
    };
}
