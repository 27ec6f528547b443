using S2Lab.Arch.Translation;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Every descriptor field sits at the bit position of docs/arm-reference.md#descriptor.</summary>
public class DescriptorTests
{
    [Theory]
    [InlineData(0x0, 0x00UL)]
    [InlineData(0x1, 0x04UL)]
    [InlineData(0x5, 0x14UL)]
    [InlineData(0x6, 0x18UL)]
    [InlineData(0xF, 0x3CUL)]
    public void MemAttr_is_bits_5_to_2(int memAttr, ulong bits)
    {
        Assert.Equal(bits, new S2Descriptor(0).WithMemAttr((byte)memAttr).Raw);
        Assert.Equal(memAttr, new S2Descriptor(bits | 0xFFFF_FFFF_FFFF_FFC3UL).MemAttr);
    }

    [Fact]
    public void Each_single_bit_field_is_at_its_position()
    {
        var zero = new S2Descriptor(0);
        Assert.Equal(1UL << 10, zero.WithAccessFlag(true).Raw);
        Assert.Equal(1UL << 11, zero.WithFnXs(true).Raw);
        Assert.Equal(1UL << 51, zero.WithDbm(true).Raw);
        Assert.Equal(1UL << 52, zero.WithContiguous(true).Raw);
        Assert.Equal(1UL << 63, zero.WithAmec(true).Raw);
        Assert.True(new S2Descriptor(1UL << 10).AccessFlag);
        Assert.True(new S2Descriptor(1UL << 11).FnXs);
        Assert.True(new S2Descriptor(1UL << 51).Dbm);
        Assert.True(new S2Descriptor(1UL << 52).Contiguous);
        Assert.True(new S2Descriptor(1UL << 63).Amec);
        var all = new S2Descriptor(ulong.MaxValue);
        Assert.Equal(~(1UL << 10), all.WithAccessFlag(false).Raw);
        Assert.Equal(~(1UL << 52), all.WithContiguous(false).Raw);
    }

    [Theory]
    [InlineData(S2Permissions.None, 0b00)]
    [InlineData(S2Permissions.Read, 0b01)]
    [InlineData(S2Permissions.Write, 0b10)]
    [InlineData(S2Permissions.ReadWrite, 0b11)]
    public void S2AP_is_bits_7_and_6_read_is_bit_6(S2Permissions perms, int s2ap)
    {
        var d = new S2Descriptor(0).WithPermissions(perms);
        Assert.Equal((ulong)s2ap << 6, d.Raw & 0xC0);
        Assert.Equal(s2ap, d.S2Ap);
        Assert.Equal((s2ap & 1) != 0, d.Readable);
        Assert.Equal((s2ap & 2) != 0, d.Writable);
        // Not executable: XN[1] (bit 54) set, XN[0] clear, as Linux writes it.
        Assert.Equal(1UL << 54, d.Raw & (3UL << 53));
        Assert.Equal(perms, d.Permissions);
    }

    [Fact]
    public void Execute_clears_XN_and_its_absence_sets_bit_54()
    {
        Assert.Equal(0UL, new S2Descriptor(3UL << 53).WithPermissions(S2Permissions.All).Raw & (3UL << 53));
        Assert.Equal(S2ExecuteNever.ExecuteNever, new S2Descriptor(0).WithPermissions(S2Permissions.Read).ExecuteNever);
    }

    [Theory]
    [InlineData(S2ExecuteNever.ExecuteEl1AndEl0, 0UL)]
    [InlineData(S2ExecuteNever.ExecuteEl0Only, 1UL << 53)]
    [InlineData(S2ExecuteNever.ExecuteNever, 1UL << 54)]
    [InlineData(S2ExecuteNever.ExecuteEl1Only, 3UL << 53)]
    public void XN_is_bits_54_and_53(S2ExecuteNever xn, ulong bits)
    {
        Assert.Equal(bits, new S2Descriptor(0).WithExecuteNever(xn).Raw);
        Assert.Equal(xn, new S2Descriptor(bits).ExecuteNever);
    }

    [Theory]
    [InlineData(S2Shareability.NonShareable, 0UL)]
    [InlineData(S2Shareability.Reserved, 1UL << 8)]
    [InlineData(S2Shareability.OuterShareable, 2UL << 8)]
    [InlineData(S2Shareability.InnerShareable, 3UL << 8)]
    public void SH_is_bits_9_and_8(S2Shareability sh, ulong bits)
    {
        Assert.Equal(bits, new S2Descriptor(0).WithShareability(sh).Raw);
        Assert.Equal(sh, new S2Descriptor(bits).Shareability);
    }

    [Fact]
    public void Software_bits_are_58_to_55_and_PBHA_62_to_59()
    {
        Assert.Equal(0xFUL << 55, new S2Descriptor(0).WithSoftwareBits(0xF).Raw);
        Assert.Equal(0x5, new S2Descriptor(0x5UL << 55).SoftwareBits);
        Assert.Equal(0xFUL << 59, new S2Descriptor(0).WithPbha(0xF).Raw);
        Assert.Equal(0xA, new S2Descriptor(0xAUL << 59).Pbha);
    }

    [Fact]
    public void Type_bits_depend_on_the_level()
    {
        var tableOrPage = new S2Descriptor(0b11);
        var blockOrReserved = new S2Descriptor(0b01);
        Assert.True(tableOrPage.IsTable(2));
        Assert.False(tableOrPage.IsTable(3));
        Assert.True(tableOrPage.IsPage(3));
        Assert.True(tableOrPage.IsLeaf(3));
        Assert.False(tableOrPage.IsLeaf(2));
        Assert.True(blockOrReserved.IsBlock(1));
        Assert.True(blockOrReserved.IsLeaf(2));
        Assert.False(blockOrReserved.IsLeaf(3)); // reserved at level 3
        Assert.False(new S2Descriptor(0b10).IsValid);
    }

    [Fact]
    public void Output_address_48_bit_form_is_bits_47_to_granule()
    {
        ulong pa = 0x0000_ABCD_1234_5000;
        var page = S2Descriptor.Leaf(pa, 3, new S2LeafAttributes(0xF, S2Permissions.ReadWrite));
        Assert.Equal(pa, page.Raw & 0x0000_FFFF_FFFF_F000);
        Assert.Equal(pa, page.LeafOutputAddress(Granule.Size4K, 3, S2AddressFormat.Pa48));
        Assert.Equal(0b11UL, page.Raw & 3);

        var block = S2Descriptor.Leaf(0x40_0000_0000, 1, new S2LeafAttributes(0xF, S2Permissions.ReadWrite));
        Assert.Equal(0b01UL, block.Raw & 3);
        Assert.Equal(0x40_0000_0000UL, block.LeafOutputAddress(Granule.Size4K, 1, S2AddressFormat.Pa48));

        var table = S2Descriptor.Table(0x8765_4000);
        Assert.Equal(0x8765_4003UL, table.Raw);
        Assert.Equal(0x8765_4000UL, table.Address(Granule.Size4K, S2AddressFormat.Pa48));
    }

    [Fact]
    public void Output_address_52_bit_forms()
    {
        // 64K with FEAT_LPA: OA[51:48] in bits [15:12].
        ulong pa64 = 0x000A_1234_5678_0000;
        ulong raw64 = S2Descriptor.EncodeAddress(pa64, S2AddressFormat.Lpa64K);
        Assert.Equal(0xAUL << 12, raw64 & (0xFUL << 12));
        Assert.Equal(0x1234_5678_0000UL, raw64 & 0x0000_FFFF_FFFF_0000);
        Assert.Equal(pa64, new S2Descriptor(raw64 | 3).Address(Granule.Size64K, S2AddressFormat.Lpa64K));

        // LPA2 (DS = 1): OA[49:48] in bits [49:48], OA[51:50] in bits [9:8].
        ulong pa2 = 0x000E_1234_5678_9000; // OA[51:48] = 0b1110
        ulong raw2 = S2Descriptor.EncodeAddress(pa2, S2AddressFormat.Lpa2);
        Assert.Equal(0b11UL << 8, raw2 & (3UL << 8));   // OA[51:50] = 11
        Assert.Equal(0b10UL << 48, raw2 & (3UL << 48)); // OA[49:48] = 10
        Assert.Equal(pa2, new S2Descriptor(raw2 | 3).Address(Granule.Size4K, S2AddressFormat.Lpa2));
        // With DS the template leaves SH out (bits [9:8] are address bits).
        Assert.Equal(0UL, new S2LeafAttributes(0xF, S2Permissions.Read).ToTemplate(S2AddressFormat.Lpa2) & (3UL << 8));
    }

    [Fact]
    public void Leaf_attributes_template_puts_each_field_in_place_and_round_trips()
    {
        var a = new S2LeafAttributes(0x6, S2Permissions.All, S2Shareability.OuterShareable, AccessFlag: true, FnXs: true, SoftwareBits: 0x9, Dbm: true);
        ulong t = a.ToTemplate();
        Assert.Equal((0x6UL << 2) | (3UL << 6) | (2UL << 8) | (1UL << 10) | (1UL << 11) | (1UL << 51) | (0x9UL << 55), t);
        Assert.Equal(a, S2LeafAttributes.FromDescriptor(new S2Descriptor(t | 3)));
        var kvmRam = new S2LeafAttributes(0xF, S2Permissions.ReadWrite);
        Assert.Equal(0x0040_0000_0000_07FCUL, kvmRam.ToTemplate()); // SH=ISH, AF, S2AP=RW, MemAttr=0xF, XN
    }

    [Fact]
    public void Describe_names_the_kind_and_fields()
    {
        var d = S2Descriptor.Leaf(0x1_0000_0000, 2, new S2LeafAttributes(0x1, S2Permissions.Read));
        string s = d.Describe(2);
        Assert.Contains("block", s);
        Assert.Contains("MemAttr=0x1", s);
        Assert.Contains("R--", s);
    }
}
