using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Each kind of stage-2 fault at each level where it can occur (docs/arm-reference.md#descriptor, #faults).</summary>
public class FaultTests
{
    /// <summary>Overwrites the descriptor the walk for <paramref name="ipa"/> reads at <paramref name="level"/>.</summary>
    private static void Poke(Stage2PageTable t, ulong ipa, int level, ulong raw)
    {
        var step = t.WalkSteps(ipa).Single(s => s.Level == level);
        t.Memory.PhysToVirt(step.DescriptorPa, 1)[0] = raw;
    }

    [Theory]
    [InlineData(48, 0)] // 4 levels: nothing mapped -> the level-0 entry is invalid
    [InlineData(40, 1)]
    public void Translation_fault_at_the_start_level_of_an_empty_table(int ipaBits, int level)
    {
        var t = Create(ipaBits);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, level), t.Translate(GiB, S2AccessKind.Read).Fault);
    }

    [Fact]
    public void Translation_faults_at_levels_2_and_3()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 2), t.Translate(GiB + 2 * MiB, S2AccessKind.Read).Fault);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 3), t.Translate(GiB + 4 * KiB, S2AccessKind.Read).Fault);
    }

    [Fact]
    public void IPA_outside_the_IPA_space_is_a_level_0_translation_fault()
    {
        var t = Create(40);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 0), t.Translate(1UL << 40, S2AccessKind.Read).Fault);
    }

    [Fact]
    public void Level_3_descriptor_with_bit_1_clear_is_reserved_and_faults()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        ulong page = t.GetLeaf(GiB).Descriptor.Raw;
        Poke(t, GiB, 3, page & ~2UL);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 3), t.Translate(GiB, S2AccessKind.Read, useTlb: false).Fault);
    }

    [Fact]
    public void Block_at_a_level_without_blocks_is_a_translation_fault()
    {
        // 16K granule, 48-bit OA: level 1 has no blocks (only with DS).
        var t = Create(42, Granule.Size16K);
        Assert.Equal(1, t.Geometry.StartLevel);
        t.Map(64 * GiB, 32 * MiB, 0x10_0000_0000, Normal(t));
        Poke(t, 64 * GiB, 1, S2Descriptor.Leaf(0x10_0000_0000, 1, Normal(t)).Raw);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 1), t.Translate(64 * GiB, S2AccessKind.Read, useTlb: false).Fault);

        // 4K granule, level 0 (48-bit IPA): no block either.
        var t4 = Create(48);
        t4.Map(0, 4 * KiB, 0, Normal(t4));
        Poke(t4, 0, 0, S2Descriptor.Leaf(0, 0, Normal(t4)).Raw);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 0), t4.Translate(0, S2AccessKind.Read, useTlb: false).Fault);
    }

    [Theory]
    [InlineData(GiB, 1)]
    [InlineData(2 * MiB, 2)]
    [InlineData(4 * KiB, 3)]
    public void Access_flag_fault_at_the_leaf_level(ulong size, int level)
    {
        var t = Create();
        t.Map(GiB, size, 0x40_0000_0000, Normal(t) with { AccessFlag = false });
        var r = t.Translate(GiB, S2AccessKind.Read);
        Assert.Equal(new S2Fault(S2FaultKind.AccessFlag, level), r.Fault);
        Assert.Equal(0, t.Tlb.CountEntries(t.Vmid)); // faults are not cached
    }

    [Fact]
    public void With_hardware_AF_the_walk_sets_AF_instead_of_faulting()
    {
        var vtcr = VtcrEl2.ForIpaSize(40, hardwareAf: true);
        var t = Stage2PageTable.Create(vtcr, new Stage2Features(48));
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t) with { AccessFlag = false });
        Assert.False(t.Translate(GiB, S2AccessKind.Read).IsFault);
        Assert.True(t.GetLeaf(GiB).Descriptor.AccessFlag);
    }

    [Theory]
    [InlineData(GiB, 1)]
    [InlineData(2 * MiB, 2)]
    [InlineData(4 * KiB, 3)]
    public void Permission_faults_at_the_leaf_level(ulong size, int level)
    {
        var t = Create();
        t.Map(GiB, size, 0x40_0000_0000, Normal(t, S2Permissions.Read));
        Assert.False(t.Translate(GiB, S2AccessKind.Read).IsFault);
        Assert.Equal(new S2Fault(S2FaultKind.Permission, level), t.Translate(GiB, S2AccessKind.Write).Fault);
        Assert.Equal(new S2Fault(S2FaultKind.Permission, level), t.Translate(GiB, S2AccessKind.Execute).Fault);

        var w = Create();
        w.Map(GiB, size, 0x40_0000_0000, Normal(w, S2Permissions.Write));
        Assert.Equal(new S2Fault(S2FaultKind.Permission, level), w.Translate(GiB, S2AccessKind.Read).Fault);
        Assert.False(w.Translate(GiB, S2AccessKind.Write).IsFault);
    }

    [Fact]
    public void Access_flag_fault_comes_before_permission_fault()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.None) with { AccessFlag = false });
        Assert.Equal(S2FaultKind.AccessFlag, t.Translate(GiB, S2AccessKind.Write).Fault.Kind);
    }

    [Theory]
    [InlineData(S2ExecuteNever.ExecuteEl1AndEl0, true, true)]
    [InlineData(S2ExecuteNever.ExecuteEl0Only, false, true)]
    [InlineData(S2ExecuteNever.ExecuteNever, false, false)]
    [InlineData(S2ExecuteNever.ExecuteEl1Only, true, false)]
    public void XN_with_FEAT_XNX_distinguishes_EL1_and_EL0(S2ExecuteNever xn, bool el1, bool el0)
    {
        var t = Create(xnx: true);
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.All));
        Poke(t, GiB, 3, t.GetLeaf(GiB).Descriptor.WithExecuteNever(xn).Raw);
        Assert.Equal(el1, !t.Translate(GiB, S2AccessKind.Execute, el0: false, useTlb: false).IsFault);
        Assert.Equal(el0, !t.Translate(GiB, S2AccessKind.Execute, el0: true, useTlb: false).IsFault);

        // Without FEAT_XNX only XN[1] counts.
        var n = Create();
        n.Map(GiB, 4 * KiB, 0x1000_0000, Normal(n, S2Permissions.All));
        Poke(n, GiB, 3, n.GetLeaf(GiB).Descriptor.WithExecuteNever(xn).Raw);
        bool xn1Clear = ((int)xn & 2) == 0;
        Assert.Equal(xn1Clear, !n.Translate(GiB, S2AccessKind.Execute, useTlb: false).IsFault);
        Assert.Equal(xn1Clear, !n.Translate(GiB, S2AccessKind.Execute, el0: true, useTlb: false).IsFault);
    }

    [Fact]
    public void Output_address_beyond_PS_is_an_address_size_fault()
    {
        // PS = 40 bits: a descriptor with OA bit 44 set faults at its level.
        var vtcr = VtcrEl2.Create(Granule.Size4K, 40, 1, psBits: 40);
        var t = Stage2PageTable.Create(vtcr, new Stage2Features(48));
        Assert.Equal(Stage2Errno.EINVAL, t.Map(GiB, 4 * KiB, 1UL << 44, Normal(t)));
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        Poke(t, GiB, 3, t.GetLeaf(GiB).Descriptor.Raw | (1UL << 44));
        Assert.Equal(new S2Fault(S2FaultKind.AddressSize, 3), t.Translate(GiB, S2AccessKind.Read, useTlb: false).Fault);
        // A next-table address beyond PS faults at the level of the table descriptor.
        ulong l2 = t.WalkSteps(GiB).Single(s => s.Level == 2).Descriptor.Raw;
        Poke(t, GiB, 2, l2 | (1UL << 44));
        Assert.Equal(new S2Fault(S2FaultKind.AddressSize, 2), t.Translate(GiB, S2AccessKind.Read, useTlb: false).Fault);
    }

    [Theory]
    [InlineData(S2FaultKind.Translation, 0, 0b000100)]
    [InlineData(S2FaultKind.Translation, 3, 0b000111)]
    [InlineData(S2FaultKind.Translation, -1, 0b101011)]
    [InlineData(S2FaultKind.AddressSize, 2, 0b000010)]
    [InlineData(S2FaultKind.AccessFlag, 1, 0b001001)]
    [InlineData(S2FaultKind.Permission, 3, 0b001111)]
    public void Fault_status_codes(S2FaultKind kind, int level, int fsc) =>
        Assert.Equal(fsc, new S2Fault(kind, level).FaultStatusCode);

    [Fact]
    public void Walk_steps_report_table_index_descriptor_address_and_value()
    {
        var t = Create(40);
        t.Map(GiB + 2 * MiB + 12 * KiB, 4 * KiB, 0x1234_5000, Normal(t));
        ulong ipa = GiB + 2 * MiB + 12 * KiB + 0x10;
        var steps = t.WalkSteps(ipa);
        Assert.Equal([1, 2, 3], steps.Select(s => s.Level));
        Assert.Equal([1, 1, 3], steps.Select(s => s.Index)); // IPA[39:30] = 1, IPA[29:21] = 1, IPA[20:12] = 3
        Assert.Equal(t.RootPa, steps[0].TablePa);
        Assert.All(steps, s => Assert.Equal(s.TablePa + 8 * (ulong)s.Index, s.DescriptorPa));
        Assert.Equal(steps[0].Descriptor.Address(Granule.Size4K, S2AddressFormat.Pa48), steps[1].TablePa);
        Assert.True(steps[2].Descriptor.IsPage(3));
        Assert.Equal(0x1234_5000UL, steps[2].Descriptor.LeafOutputAddress(Granule.Size4K, 3, S2AddressFormat.Pa48));

        // Concatenated root: IPA[39] selects the second table, so the index is >= 512.
        var high = t.WalkSteps(0x80_0000_0000);
        Assert.Single(high);
        Assert.Equal(512, high[0].Index);
        Assert.False(high[0].Descriptor.IsValid);
    }
}

public class ExplainTests
{
    [Fact]
    public void Explanation_names_each_level_index_and_the_outcome()
    {
        var t = TestTables.Create(40);
        t.Map(TestTables.GiB, 2 * TestTables.MiB, 0x4000_0000, TestTables.Normal(t, S2Permissions.Read));
        var lines = t.ExplainTranslation(TestTables.GiB + 0x1234, S2AccessKind.Write);
        Assert.Equal(4, lines.Count);
        Assert.Contains("2 concatenated", lines[1]);
        Assert.Contains("IPA[39:30] = 1", lines[1]);
        Assert.Contains("block", lines[2]);
        Assert.Contains("Permission fault at level 2", lines[3]);
        Assert.Contains("Translation fault at level 1", t.ExplainTranslation(0x80_0000_0000, S2AccessKind.Read)[^1]);
    }
}
