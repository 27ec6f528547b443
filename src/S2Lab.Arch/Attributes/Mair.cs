namespace S2Lab.Arch.Attributes;

/// <summary>Architecture features that change how attributes are encoded or combined.</summary>
[Flags]
public enum AttributeFeatures
{
    None = 0,

    /// <summary>FEAT_XS: the XS attribute, MAIR bytes 0x40, 0xA0 and 0b0000dd01, descriptor FnXS.</summary>
    Xs = 1 << 0,

    /// <summary>FEAT_MTE2: MAIR 0xF0 is Tagged Normal.</summary>
    Mte2 = 1 << 1,

    /// <summary>FEAT_MTE_PERM: stage-2 NoTagAccess (FWB=0 MemAttr 0b0100; FWB=1 MemAttr[3:1] = 0b111).</summary>
    MtePerm = 1 << 2,
}

/// <summary>Why a MAIR attribute byte is not a valid encoding.</summary>
public enum MairIssue
{
    /// <summary>A valid encoding.</summary>
    None,

    /// <summary>0b0000dd1x: UNPREDICTABLE. S2Lab uses Device <c>dd</c>, XS=1.</summary>
    DeviceLowBitsUnpredictable,

    /// <summary>0b0000dd01 without FEAT_XS: UNPREDICTABLE. S2Lab uses Device <c>dd</c>, XS=1.</summary>
    DeviceXsWithoutFeatXs,

    /// <summary>0x40 or 0xA0 without FEAT_XS: RESMAIR. S2Lab uses the FEAT_XS meaning (NC/NC or WT.RA/WT.RA) with XS=1.</summary>
    NormalXsWithoutFeatXs,

    /// <summary>0xF0 without FEAT_MTE2: UNPREDICTABLE. S2Lab uses untagged Normal iWB oWB RWA (0xFF).</summary>
    TaggedWithoutMte2,

    /// <summary>A Normal byte with inner nibble 0b0000 ("RESMAIR") other than 0x40/0xA0/0xF0. S2Lab uses the outer half as encoded and inner NC.</summary>
    ResMair,
}

/// <summary>The result of decoding a MAIR byte: the attributes S2Lab uses, and whether the byte was a valid encoding.</summary>
/// <param name="Value">The byte decoded.</param>
/// <param name="Attributes">The meaning; for an invalid byte, the documented CONSTRAINED UNPREDICTABLE choice of <see cref="Issue"/>.</param>
/// <param name="Issue">Why the byte is not valid, or <see cref="MairIssue.None"/>.</param>
public readonly record struct MairDecoding(byte Value, MemoryAttributes Attributes, MairIssue Issue)
{
    public bool IsValid => Issue == MairIssue.None;
}

/// <summary>MAIR_ELx attribute bytes (stage 1, docs/arm-reference.md#mair): decoding (<c>S1DecodeMemAttrs</c>) and encoding (<c>EncodePARAttrs</c>).</summary>
public static class Mair
{
    /// <summary>The attribute field Attr&lt;index&gt; (bits [8n+7:8n]) of a MAIR_ELx value.</summary>
    public static byte AttrField(ulong mair, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 7);
        return (byte)(mair >> (8 * index));
    }

    /// <summary>True if <paramref name="attr"/> is a valid encoding on a CPU with <paramref name="features"/>.</summary>
    public static bool IsValid(byte attr, AttributeFeatures features) => Decode(attr, features).IsValid;

    /// <summary>
    /// Decodes a MAIR attribute byte. Without FEAT_XS every result has XS=1; with it, WB/WB bytes and the XS forms
    /// (0x40, 0xA0, 0b0000dd01) have XS=0, as in <c>S1DecodeMemAttrs</c>. Invalid bytes are reported in
    /// <see cref="MairDecoding.Issue"/>, with the choice S2Lab makes for them in <see cref="MairDecoding.Attributes"/>.
    /// </summary>
    public static MairDecoding Decode(byte attr, AttributeFeatures features) =>
        DecodeTable[(((int)features & 0b111) << 8) | attr];

    /// <summary>Every byte decoded under every feature combination (2048 entries), so decoding is one lookup.</summary>
    private static readonly MairDecoding[] DecodeTable = BuildDecodeTable();

    private static MairDecoding[] BuildDecodeTable()
    {
        var table = new MairDecoding[8 * 256];
        for (var f = 0; f < 8; f++)
        {
            for (var b = 0; b < 256; b++)
            {
                table[(f << 8) | b] = DecodeSlow((byte)b, (AttributeFeatures)f);
            }
        }

        return table;
    }

    private static MairDecoding DecodeSlow(byte attr, AttributeFeatures features)
    {
        var hasXs = (features & AttributeFeatures.Xs) != 0;
        var outer = attr >> 4;
        var inner = attr & 0xF;

        if (outer == 0)
        {
            var type = (DeviceType)((attr >> 2) & 0b11);
            return (attr & 0b11) switch
            {
                0b00 => new(attr, MemoryAttributes.Device(type), MairIssue.None),
                0b01 when hasXs => new(attr, MemoryAttributes.Device(type, xs: false), MairIssue.None),
                0b01 => new(attr, MemoryAttributes.Device(type), MairIssue.DeviceXsWithoutFeatXs),
                _ => new(attr, MemoryAttributes.Device(type), MairIssue.DeviceLowBitsUnpredictable),
            };
        }

        if (inner == 0)
        {
            switch (attr)
            {
                case 0x40:
                    return new(attr, MemoryAttributes.NormalNonCacheable(xs: !hasXs), hasXs ? MairIssue.None : MairIssue.NormalXsWithoutFeatXs);
                case 0xA0:
                    var wtRa = new CacheAttributes(Cacheability.WriteThrough, AllocationHints.ReadAllocate);
                    return new(attr, MemoryAttributes.Normal(wtRa, wtRa, xs: !hasXs), hasXs ? MairIssue.None : MairIssue.NormalXsWithoutFeatXs);
                case 0xF0:
                    var hasMte = (features & AttributeFeatures.Mte2) != 0;
                    return hasMte
                        ? new(attr, MemoryAttributes.NormalTagged.WithXs(!hasXs), MairIssue.None)
                        : new(attr, MemoryAttributes.NormalWriteBack.WithXs(!hasXs), MairIssue.TaggedWithoutMte2);
                default:
                    return new(attr, MemoryAttributes.Normal(CacheAttributes.NonCacheable, CacheAttributes.FromNibble(outer)), MairIssue.ResMair);
            }
        }

        var normal = MemoryAttributes.Normal(CacheAttributes.FromNibble(inner), CacheAttributes.FromNibble(outer));
        // S1DecodeMemAttrs: XS is 0 for iWB oWB, 1 for other Normal bytes (FEAT_XS only).
        return new(attr, hasXs && normal.IsWriteBack ? normal.WithXs(false) : normal, MairIssue.None);
    }

    /// <summary>
    /// Encodes attributes as a MAIR / PAR_EL1.ATTR byte (<c>EncodePARAttrs</c>): Device 0b0000dd00, or 0b0000dd01 when
    /// XS=0; Tagged 0xF0; Normal iNC oNC 0x40 and iWT.RA oWT.RA 0xA0 when XS=0; otherwise outer&lt;&lt;4 | inner.
    /// For every valid byte b, <c>Encode(Decode(b, f).Attributes) == b</c>.
    /// </summary>
    public static byte Encode(in MemoryAttributes attributes)
    {
        if (attributes.IsDevice)
        {
            return (byte)(((int)attributes.DeviceType << 2) | (attributes.Xs ? 0 : 1));
        }

        if (attributes.Tagged)
        {
            return 0xF0;
        }

        if (!attributes.Xs)
        {
            var inner = attributes.Inner;
            var outer = attributes.Outer;
            if (inner.Cacheability == Cacheability.NonCacheable && outer.Cacheability == Cacheability.NonCacheable)
            {
                return 0x40;
            }

            var wtRa = new CacheAttributes(Cacheability.WriteThrough, AllocationHints.ReadAllocate);
            if (inner == wtRa && outer == wtRa)
            {
                return 0xA0;
            }
        }

        return attributes.PlainByte;
    }
}
