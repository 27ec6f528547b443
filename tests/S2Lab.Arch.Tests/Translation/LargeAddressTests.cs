using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>52-bit output addresses through the whole table: LPA2 (DS = 1, 4K) and FEAT_LPA (64K).</summary>
public class LargeAddressTests
{
    [Fact]
    public void LPA2_4K_52_bit_IPA_and_PA_map_and_translate_with_SH_from_VTCR()
    {
        var vtcr = VtcrEl2.Create(Granule.Size4K, 52, 0, psBits: 52, ds: true, sh0: 2);
        var v = vtcr.Validate(new Stage2Features(52, Lpa2: true));
        Assert.True(v.IsValid, v.Reason);
        var geo = v.Geometry!;
        Assert.Equal(S2AddressFormat.Lpa2, geo.AddressFormat);
        Assert.Equal(16, geo.ConcatenatedTables);
        var t = new Stage2PageTable(geo);
        ulong ipa = 0xF_0000_4000_0000;
        ulong pa = 0xE_1234_5678_9000;
        Assert.Equal(Stage2Errno.None, t.Map(ipa, 4 * KiB, pa, new S2LeafAttributes(0xF, S2Permissions.ReadWrite)));
        var r = t.Translate(ipa + 0x18, S2AccessKind.Read);
        Assert.False(r.IsFault, r.ToString());
        Assert.Equal(pa + 0x18, r.Pa);
        Assert.Equal(S2Shareability.OuterShareable, r.Shareability); // VTCR_EL2.SH0, not descriptor bits [9:8]
        Assert.Equal(0b11UL << 8, r.Leaf.Raw & (3UL << 8));          // bits [9:8] hold OA[51:50]
        Assert.Equal(pa, t.GetLeaf(ipa).Descriptor.LeafOutputAddress(Granule.Size4K, 3, S2AddressFormat.Lpa2));
    }

    [Fact]
    public void LPA_64K_52_bit_PA_keeps_OA_51_48_in_bits_15_12()
    {
        var vtcr = VtcrEl2.Create(Granule.Size64K, 48, 1, psBits: 52);
        var v = vtcr.Validate(new Stage2Features(52));
        Assert.True(v.IsValid, v.Reason);
        var geo = v.Geometry!;
        Assert.Equal(S2AddressFormat.Lpa64K, geo.AddressFormat);
        Assert.True(geo.BlockAllowedAtLevel(1)); // 4 TiB blocks exist with 52-bit PA (KVM does not use them)
        var t = new Stage2PageTable(geo);
        ulong pa = 0xA_0000_2000_0000; // 512 MiB aligned
        Assert.Equal(Stage2Errno.None, t.Map(GiB / 2, 512 * MiB, pa, new S2LeafAttributes(0xF, S2Permissions.Read)));
        var leaf = t.GetLeaf(GiB / 2);
        Assert.Equal(2, leaf.Level);
        Assert.Equal(0xAUL << 12, leaf.Descriptor.Raw & (0xFUL << 12));
        Assert.Equal(pa + 0x1234, t.Translate(GiB / 2 + 0x1234, S2AccessKind.Read).Pa);
    }

    [Fact]
    public void Forty_eight_bit_OA_rejects_a_52_bit_PA()
    {
        var t = Create(48);
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0, 4 * KiB, 1UL << 48, Normal(t)));
    }
}
