using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Tests.Arm64;

/// <summary>Linux's stage-1 MAIR layout and KVM's stage-2 encodings (docs/arm-reference.md#linux-mair, #kvm-s2-encodings; docs/rules.md).</summary>
public class LinuxEncodingTests
{
    [Fact]
    public void MAIR_EL1_holds_each_MT_index_at_its_byte()
    {
        Assert.Equal(0x0000_0004_0044_FFFFUL, LinuxMair.MairEl1);
        Assert.Equal(0x0000_0004_0044_F0FFUL, LinuxMair.MairEl1WithMte);
        Assert.Equal(LinuxMair.MAIR_ATTR_NORMAL, LinuxMair.AttrFor(LinuxMair.MT_NORMAL, mte: true));
        Assert.Equal(LinuxMair.MAIR_ATTR_NORMAL_TAGGED, LinuxMair.AttrFor(LinuxMair.MT_NORMAL_TAGGED, mte: true));
        Assert.Equal(LinuxMair.MAIR_ATTR_NORMAL, LinuxMair.AttrFor(LinuxMair.MT_NORMAL_TAGGED, mte: false));
        Assert.Equal(LinuxMair.MAIR_ATTR_NORMAL_NC, LinuxMair.AttrFor(LinuxMair.MT_NORMAL_NC, mte: true));
        Assert.Equal(LinuxMair.MAIR_ATTR_DEVICE_nGnRnE, LinuxMair.AttrFor(LinuxMair.MT_DEVICE_nGnRnE, mte: true));
        Assert.Equal(LinuxMair.MAIR_ATTR_DEVICE_nGnRE, LinuxMair.AttrFor(LinuxMair.MT_DEVICE_nGnRE, mte: true));
        Assert.Equal(0, LinuxMair.MT_NORMAL);
        Assert.Equal([0, 1, 2, 3, 4], LinuxMair.Types.Select(t => t.AttrIndx));
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(1, true)]
    [InlineData(2, false)]
    [InlineData(3, false)]
    [InlineData(4, false)]
    public void Rule3_VMA_cacheability_follows_the_attr_index(int attrIndx, bool cacheable)
    {
        Assert.Equal(cacheable, LinuxMair.IsCacheableAttrIndx(attrIndx));
        // Consistent with the MAIR byte Linux programs at that index: cacheable iff Normal with a cacheable half.
        var attrs = Mair.Decode(LinuxMair.AttrFor(attrIndx, mte: true), AttributeFeatures.Mte2).Attributes;
        Assert.Equal(cacheable, attrs.IsAnyCacheable);
    }

    [Theory]
    [InlineData(KvmS2MemType.Normal, false, 0xF)]
    [InlineData(KvmS2MemType.Normal, true, 6)]
    [InlineData(KvmS2MemType.NormalNc, false, 5)]
    [InlineData(KvmS2MemType.NormalNc, true, 5)]
    [InlineData(KvmS2MemType.DeviceNGnRE, false, 1)]
    [InlineData(KvmS2MemType.DeviceNGnRE, true, 1)]
    [InlineData(KvmS2MemType.AsS1, false, 0xF)]
    [InlineData(KvmS2MemType.AsS1, true, 7)]
    public void PAGE_S2_MEMATTR_picks_the_FWB_value_when_FWB_is_used(KvmS2MemType type, bool fwb, int value)
    {
        Assert.Equal(value, KvmS2MemAttr.PageS2MemAttr(type, fwb));
        // PTE_S2_MEMATTR(t): the value lands at descriptor bits [5:2].
        Assert.Equal((ulong)value << 2, new S2Descriptor(0).WithMemAttr((byte)value).Raw);
    }

    [Fact]
    public void TypeOf_inverts_PAGE_S2_MEMATTR_and_knows_no_other_value()
    {
        foreach (var fwb in new[] { false, true })
        {
            for (var v = 0; v < 16; v++)
            {
                var types = Enum.GetValues<KvmS2MemType>().Where(t => KvmS2MemAttr.PageS2MemAttr(t, fwb) == v).ToList();
                var decoded = KvmS2MemAttr.TypeOf((byte)v, fwb);
                if (types.Count == 0)
                    Assert.Null(decoded);
                else // without FWB, AS_S1 shares NORMAL's 0xF: KVM means Normal there
                    Assert.Equal(types.Contains(KvmS2MemType.Normal) ? KvmS2MemType.Normal : types.Single(), decoded);
            }
        }
        Assert.Equal(KvmS2MemType.AsS1, KvmS2MemAttr.TypeOf(KvmS2MemAttr.MT_S2_FWB_AS_S1, hasFwb: true));
        Assert.Null(KvmS2MemAttr.TypeOf(KvmS2MemAttr.MT_S2_FWB_NORMAL, hasFwb: false));
        Assert.Null(KvmS2MemAttr.TypeOf(KvmS2MemAttr.MT_S2_NORMAL, hasFwb: true));
    }

    [Fact]
    public void S2Permissions_has_kvm_pgtable_prot_R_W_X_values_so_a_cast_converts_them()
    {
        // kvm_pgtable.h: KVM_PGTABLE_PROT_X = BIT(0), _W = BIT(1), _R = BIT(2).
        Assert.Equal(1UL << 0, (ulong)KvmPgtableProt.X);
        Assert.Equal(1UL << 1, (ulong)KvmPgtableProt.W);
        Assert.Equal(1UL << 2, (ulong)KvmPgtableProt.R);
        Assert.Equal((ulong)KvmPgtableProt.X, (ulong)S2Permissions.Execute);
        Assert.Equal((ulong)KvmPgtableProt.W, (ulong)S2Permissions.Write);
        Assert.Equal((ulong)KvmPgtableProt.R, (ulong)S2Permissions.Read);
        Assert.Equal((ulong)KvmPgtableProt.RWX, (ulong)S2Permissions.All);
    }

    [Fact]
    public void Kvm_pgtable_prot_has_the_kernel_bits()
    {
        Assert.Equal(1UL, (ulong)KvmPgtableProt.X);
        Assert.Equal(2UL, (ulong)KvmPgtableProt.W);
        Assert.Equal(4UL, (ulong)KvmPgtableProt.R);
        Assert.Equal(8UL, (ulong)KvmPgtableProt.DEVICE);
        Assert.Equal(16UL, (ulong)KvmPgtableProt.NORMAL_NC);
        Assert.Equal(1UL << 55, (ulong)KvmPgtableProt.SW0);
        Assert.Equal(1UL << 58, (ulong)KvmPgtableProt.SW3);
    }

    [Fact]
    public void Table_covers_every_Linux_type_against_every_KVM_type_both_FWB_settings()
    {
        var cells = CombineTable.LinuxVsKvm();
        Assert.Equal(5 * 3 * 2, cells.Count);

        // Guest RAM mapped by a Linux guest as Device over KVM's FWB Normal: forced write-back (the FWB point).
        var forced = cells.Single(c => c.S1Name == "MT_DEVICE_nGnRE" && c.S2Type == KvmS2MemType.Normal && c.Fwb);
        Assert.Equal("MT_S2_FWB_NORMAL", forced.S2Name);
        Assert.True(forced.Result.IsWriteBackCacheable);

        // Without FWB, the guest's Device mapping wins over MT_S2_NORMAL.
        var noFwb = cells.Single(c => c.S1Name == "MT_DEVICE_nGnRE" && c.S2Type == KvmS2MemType.Normal && !c.Fwb);
        Assert.True(noFwb.Result.IsDevice);

        // Tagged guest RAM stays tagged over Normal with either FWB setting.
        Assert.All(cells.Where(c => c.S1Name == "MT_NORMAL_TAGGED" && c.S2Type == KvmS2MemType.Normal), c => Assert.True(c.Result.IsTagged));

        // Every cell matches a direct combine of its inputs.
        Assert.All(cells, c => Assert.Equal(
            AttributeCombiner.Combine(new CombineInput(c.S1Attr, Shareability.ISH, c.S2MemAttr, Shareability.ISH, c.Fwb) { Features = AttributeFeatures.Mte2 }),
            c.Result));
    }
}
