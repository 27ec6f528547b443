using CsCheck;
using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>MAIR attribute bytes, docs/arm-reference.md#mair.</summary>
public class MairTests
{
    private static readonly AttributeFeatures[] AllFeatureSets =
        [.. Enumerable.Range(0, 8).Select(i => (AttributeFeatures)i)];

    [Theory]
    [InlineData(0x00, DeviceType.nGnRnE)]
    [InlineData(0x04, DeviceType.nGnRE)]
    [InlineData(0x08, DeviceType.nGRE)]
    [InlineData(0x0C, DeviceType.GRE)]
    public void Device_bytes_decode_to_their_type(byte attr, DeviceType type)
    {
        var d = Mair.Decode(attr, AttributeFeatures.None);
        Assert.True(d.IsValid);
        Assert.True(d.Attributes.IsDevice);
        Assert.Equal(type, d.Attributes.DeviceType);
        Assert.True(d.Attributes.Xs);
    }

    [Theory]
    [InlineData(0xFF, Cacheability.WriteBack, AllocationHints.ReadWriteAllocate, false)]
    [InlineData(0xBB, Cacheability.WriteThrough, AllocationHints.ReadWriteAllocate, false)]
    [InlineData(0xAA, Cacheability.WriteThrough, AllocationHints.ReadAllocate, false)]
    [InlineData(0xEE, Cacheability.WriteBack, AllocationHints.ReadAllocate, false)]
    [InlineData(0x44, Cacheability.NonCacheable, AllocationHints.None, false)]
    [InlineData(0x77, Cacheability.WriteBack, AllocationHints.ReadWriteAllocate, true)]
    [InlineData(0x33, Cacheability.WriteThrough, AllocationHints.ReadWriteAllocate, true)]
    [InlineData(0x88, Cacheability.WriteThrough, AllocationHints.None, false)]
    [InlineData(0x55, Cacheability.WriteBack, AllocationHints.WriteAllocate, true)]
    public void Common_normal_bytes_decode_per_spec_1_2(byte attr, Cacheability c, AllocationHints hints, bool transient)
    {
        var d = Mair.Decode(attr, AttributeFeatures.None);
        Assert.True(d.IsValid);
        Assert.True(d.Attributes.IsNormal);
        var half = new CacheAttributes(c, hints, transient);
        Assert.Equal(half, d.Attributes.Inner);
        Assert.Equal(half, d.Attributes.Outer);
    }

    [Fact]
    public void Inner_and_outer_are_decoded_from_their_own_nibbles()
    {
        var d = Mair.Decode(0x4F, AttributeFeatures.None).Attributes;
        Assert.Equal(Cacheability.NonCacheable, d.Outer.Cacheability);
        Assert.Equal(CacheAttributes.WriteBackRwa, d.Inner);
        Assert.Equal("Normal oNC iWB.RWA", d.Description);
    }

    [Theory]
    [InlineData(0x02, MairIssue.DeviceLowBitsUnpredictable)]
    [InlineData(0x03, MairIssue.DeviceLowBitsUnpredictable)]
    [InlineData(0x0E, MairIssue.DeviceLowBitsUnpredictable)]
    [InlineData(0x01, MairIssue.DeviceXsWithoutFeatXs)]
    [InlineData(0x0D, MairIssue.DeviceXsWithoutFeatXs)]
    [InlineData(0x40, MairIssue.NormalXsWithoutFeatXs)]
    [InlineData(0xA0, MairIssue.NormalXsWithoutFeatXs)]
    [InlineData(0xF0, MairIssue.TaggedWithoutMte2)]
    [InlineData(0x10, MairIssue.ResMair)]
    [InlineData(0x80, MairIssue.ResMair)]
    [InlineData(0xE0, MairIssue.ResMair)]
    public void Unpredictable_and_reserved_bytes_are_reported_without_features(byte attr, MairIssue issue)
    {
        var d = Mair.Decode(attr, AttributeFeatures.None);
        Assert.False(d.IsValid);
        Assert.Equal(issue, d.Issue);
    }

    [Fact]
    public void Xs_forms_are_valid_with_FEAT_XS_and_carry_XS_0()
    {
        var nc = Mair.Decode(0x40, AttributeFeatures.Xs);
        Assert.True(nc.IsValid);
        Assert.Equal(MemoryAttributes.NormalNonCacheable(xs: false), nc.Attributes);

        var wt = Mair.Decode(0xA0, AttributeFeatures.Xs);
        Assert.True(wt.IsValid);
        var wtRa = new CacheAttributes(Cacheability.WriteThrough, AllocationHints.ReadAllocate);
        Assert.Equal(MemoryAttributes.Normal(wtRa, wtRa, xs: false), wt.Attributes);

        var dev = Mair.Decode(0x05, AttributeFeatures.Xs);
        Assert.True(dev.IsValid);
        Assert.Equal(MemoryAttributes.Device(DeviceType.nGnRE, xs: false), dev.Attributes);

        // Without FEAT_XS, 0x44 and 0xAA are XS=1 (and with it too: only the special forms clear XS).
        Assert.True(Mair.Decode(0x44, AttributeFeatures.Xs).Attributes.Xs);
        Assert.True(Mair.Decode(0xAA, AttributeFeatures.Xs).Attributes.Xs);
    }

    [Fact]
    public void F0_is_Tagged_Normal_only_with_MTE2()
    {
        var tagged = Mair.Decode(0xF0, AttributeFeatures.Mte2);
        Assert.True(tagged.IsValid);
        Assert.True(tagged.Attributes.Tagged);
        Assert.True(tagged.Attributes.IsWriteBack);
        Assert.Equal("Normal-Tagged oWB.RWA iWB.RWA", tagged.Attributes.Description);

        var untagged = Mair.Decode(0xF0, AttributeFeatures.None);
        Assert.False(untagged.Attributes.Tagged);
        Assert.Equal(MairIssue.TaggedWithoutMte2, untagged.Issue);
    }

    [Theory]
    [InlineData(AttributeFeatures.None, 229)]
    [InlineData(AttributeFeatures.Xs, 235)]
    [InlineData(AttributeFeatures.Mte2, 230)]
    [InlineData(AttributeFeatures.Xs | AttributeFeatures.Mte2, 236)]
    public void Number_of_valid_bytes_per_feature_set(AttributeFeatures features, int count)
    {
        // 4 Device + 15x15 Normal with non-zero nibbles; FEAT_XS adds 0bdd01 (4), 0x40 and 0xA0; MTE2 adds 0xF0.
        Assert.Equal(count, Enumerable.Range(0, 256).Count(b => Mair.IsValid((byte)b, features)));
    }

    [Fact]
    public void Every_valid_byte_decodes_and_encodes_to_itself_exhaustive()
    {
        foreach (var features in AllFeatureSets)
        {
            for (var b = 0; b < 256; b++)
            {
                var d = Mair.Decode((byte)b, features);
                if (d.IsValid)
                {
                    Assert.Equal((byte)b, Mair.Encode(d.Attributes));
                }
            }
        }
    }

    [Fact]
    public void Property_valid_bytes_round_trip()
    {
        Gen.Select(Gen.Byte, Gen.Int[0, 7]).Sample((b, f) =>
        {
            var d = Mair.Decode(b, (AttributeFeatures)f);
            return !d.IsValid || Mair.Encode(d.Attributes) == b;
        });
    }

    [Fact]
    public void AttrField_reads_each_byte_of_MAIR()
    {
        const ulong mair = 0x0706050403020100UL;
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal((byte)i, Mair.AttrField(mair, i));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => Mair.AttrField(mair, 8));
    }
}

public class MemoryAttributesDefaultTests
{
    [Fact]
    public void Default_is_Device_nGnRnE_with_XS_1()
    {
        var d = default(MemoryAttributes);
        Assert.True(d.IsDevice);
        Assert.True(d.Xs);
        Assert.Equal(0x00, Mair.Encode(d));
        Assert.Equal(MemoryAttributes.Device(DeviceType.nGnRnE), d);
    }
}
