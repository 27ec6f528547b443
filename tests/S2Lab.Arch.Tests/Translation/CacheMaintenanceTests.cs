using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>The CMOs a change reports (docs/arm-reference.md#cmo; Linux stage2_map_walker_try_leaf, stage2_unmap_walker).</summary>
public class CacheMaintenanceTests
{
    private static readonly CacheOp Dc = CacheOp.DcCivac;
    private static readonly CacheOp Ic = CacheOp.IcIvau;

    [Fact]
    public void New_cacheable_leaf_without_FWB_needs_DC_clean_invalidate_to_PoC_over_the_whole_leaf()
    {
        var t = Create(fwb: false, dic: true);
        var cmos = new List<S2CacheMaintenance>();
        t.Map(GiB, 2 * MiB, 0x4000_0000, new S2LeafAttributes(0xF, S2Permissions.ReadWrite), cmos: cmos);
        Assert.Equal([new S2CacheMaintenance(Dc, GiB, 0x4000_0000, 2 * MiB)], cmos);
    }

    [Fact]
    public void Contiguous_pages_merge_into_one_range_and_discontiguous_PA_splits_it()
    {
        var t = Create(fwb: false, dic: true);
        var cmos = new List<S2CacheMaintenance>();
        t.Map(GiB, 64 * KiB, 0x4000_0000, Normal(t), 4 * KiB, cmos);
        t.Map(GiB + 64 * KiB, 4 * KiB, 0x9000_0000, Normal(t), 4 * KiB, cmos);
        Assert.Equal(
            [new S2CacheMaintenance(Dc, GiB, 0x4000_0000, 64 * KiB), new S2CacheMaintenance(Dc, GiB + 64 * KiB, 0x9000_0000, 4 * KiB)],
            cmos);
        Assert.Equal(17, t.Counters.DcacheCleanInvalidatePoc);
    }

    [Theory]
    [InlineData(false, false, 0xF, true, true)]
    [InlineData(false, true, 0xF, true, false)]
    [InlineData(true, false, 0x6, false, true)]
    [InlineData(true, true, 0x6, false, false)]
    public void FWB_drops_the_D_cache_CMO_and_DIC_the_I_cache_CMO(bool fwb, bool dic, int memAttr, bool expectDc, bool expectIc)
    {
        var t = Create(fwb: fwb, dic: dic);
        Assert.Equal(memAttr, t.NormalMemAttr);
        var cmos = new List<S2CacheMaintenance>();
        t.Map(GiB, 4 * KiB, 0x4000_0000, new S2LeafAttributes((byte)memAttr, S2Permissions.All), cmos: cmos);
        Assert.Equal(expectDc, cmos.Any(c => c.Kind == Dc));
        Assert.Equal(expectIc, cmos.Any(c => c.Kind == Ic));
        Assert.All(cmos, c => Assert.Equal((GiB, 0x4000_0000UL, 4 * KiB), (c.Ipa, c.Pa, c.Size)));
    }

    [Theory]
    [InlineData(0x1)] // Device-nGnRE
    [InlineData(0x5)] // Normal-NC
    [InlineData(0x6)] // the FWB "normal" encoding means something else without FWB: not KVM_S2_MEMATTR(NORMAL)
    public void Non_cacheable_leaves_need_no_D_cache_CMO(int memAttr)
    {
        var t = Create(fwb: false, dic: true);
        var cmos = new List<S2CacheMaintenance>();
        t.Map(GiB, 4 * KiB, 0x4000_0000, new S2LeafAttributes((byte)memAttr, S2Permissions.ReadWrite), cmos: cmos);
        t.Unmap(GiB, 4 * KiB, cmos);
        Assert.Empty(cmos);
    }

    [Fact]
    public void With_FWB_the_0xF_encoding_is_not_KVM_normal_and_gets_no_CMO()
    {
        var t = Create(fwb: true, dic: false);
        var cmos = new List<S2CacheMaintenance>();
        t.Map(GiB, 4 * KiB, 0x4000_0000, new S2LeafAttributes(0xF, S2Permissions.ReadWrite), cmos: cmos);
        Assert.Empty(cmos);
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void Unmap_of_a_cacheable_leaf_cleans_to_PoC_only_without_FWB(bool fwb, bool expectDc)
    {
        var t = Create(fwb: fwb, dic: true);
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t));
        var cmos = new List<S2CacheMaintenance>();
        t.Unmap(GiB, 2 * MiB, cmos);
        Assert.Equal(expectDc ? [new S2CacheMaintenance(Dc, GiB, 0x4000_0000, 2 * MiB)] : [], cmos);
    }

    [Fact]
    public void Adding_execute_permission_without_DIC_invalidates_the_I_cache()
    {
        var t = Create(fwb: true, dic: false);
        t.Map(GiB, 4 * KiB, 0x4000_0000, Normal(t, S2Permissions.ReadWrite));
        var cmos = new List<S2CacheMaintenance>();
        Assert.Equal(Stage2Errno.None, t.RelaxPermissions(GiB, S2Permissions.Execute, cmos));
        Assert.Equal([new S2CacheMaintenance(Ic, GiB, 0x4000_0000, 4 * KiB)], cmos);

        var d = Create(fwb: true, dic: true);
        d.Map(GiB, 4 * KiB, 0x4000_0000, Normal(d, S2Permissions.ReadWrite));
        cmos.Clear();
        d.RelaxPermissions(GiB, S2Permissions.Execute, cmos);
        Assert.Empty(cmos);
    }

    [Fact]
    public void Split_and_unchanged_remaps_need_no_CMO()
    {
        var t = Create(fwb: false, dic: false);
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t, S2Permissions.All));
        long dc = t.Counters.DcacheCleanInvalidatePoc, ic = t.Counters.IcacheInvalidatePou;
        var cmos = new List<S2CacheMaintenance>();
        t.Split(GiB, 2 * MiB);
        t.Map(GiB, 4 * KiB, 0x4000_0000, Normal(t, S2Permissions.All), 4 * KiB, cmos); // same leaf: -EAGAIN path
        Assert.Empty(cmos);
        Assert.Equal((dc, ic), (t.Counters.DcacheCleanInvalidatePoc, t.Counters.IcacheInvalidatePou));
    }

    [Fact]
    public void Collapse_reports_the_new_block_CMO_like_a_block_map()
    {
        var t = Create(fwb: false, dic: true);
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t), 4 * KiB);
        var cmos = new List<S2CacheMaintenance>();
        t.Collapse(GiB, 2 * MiB, out _, cmos);
        Assert.Equal([new S2CacheMaintenance(Dc, GiB, 0x4000_0000, 2 * MiB)], cmos);
    }
}

public class FlushTests
{
    [Fact]
    public void Flush_cleans_every_cacheable_leaf_without_FWB_and_nothing_with_FWB()
    {
        var t = TestTables.Create(fwb: false);
        t.Map(TestTables.GiB, 2 * TestTables.MiB, 0x4000_0000, TestTables.Normal(t));
        t.Map(2 * TestTables.GiB, 4 * TestTables.KiB, 0x9000_0000, TestTables.Device());
        var cmos = new List<S2CacheMaintenance>();
        Assert.Equal(1, t.FlushDcache(0, 1UL << 40, cmos));
        Assert.Equal([new S2CacheMaintenance(CacheOp.DcCivac, TestTables.GiB, 0x4000_0000, 2 * TestTables.MiB)], cmos);

        var f = TestTables.Create(fwb: true);
        f.Map(TestTables.GiB, 2 * TestTables.MiB, 0x4000_0000, TestTables.Normal(f));
        Assert.Equal(0, f.FlushDcache(0, 1UL << 40));
    }
}
