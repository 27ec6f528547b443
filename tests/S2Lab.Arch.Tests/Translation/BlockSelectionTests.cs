using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Map picks the largest leaf that fits the range, is aligned in IPA and PA, and the caller allows.</summary>
public class BlockSelectionTests
{
    private static List<(ulong Ipa, int Level)> Leaves(Stage2PageTable t, ulong ipa, ulong size) =>
        t.CollectLeaves(ipa, size).Select(l => (l.Ipa, l.Level)).ToList();

    [Fact]
    public void Aligned_1G_range_with_aligned_PA_becomes_one_1G_block()
    {
        var t = Create();
        Assert.Equal(Stage2Errno.None, t.Map(GiB, GiB, 0x40_0000_0000, Normal(t)));
        Assert.Equal([(GiB, 1)], Leaves(t, GiB, GiB));
        Assert.Equal(8 * (long)KiB, t.TableBytes); // a level-1 block needs no table below the root
    }

    [Fact]
    public void PA_aligned_only_to_2M_gives_2M_blocks()
    {
        var t = Create();
        t.Map(GiB, GiB, 0x40_0020_0000, Normal(t));
        var leaves = Leaves(t, GiB, GiB);
        Assert.Equal(512, leaves.Count);
        Assert.All(leaves, l => Assert.Equal(2, l.Level));
    }

    [Fact]
    public void Unaligned_edges_use_pages_and_the_aligned_middle_uses_blocks()
    {
        var t = Create();
        // [2M - 8K, 6M + 4K): 2 pages, two 2M blocks, 1 page.
        ulong ipa = 2 * MiB - 8 * KiB;
        ulong size = 4 * MiB + 12 * KiB;
        t.Map(ipa, size, 0x80_0000_0000 + ipa, Normal(t));
        Assert.Equal(
            [(ipa, 3), (ipa + 4 * KiB, 3), (2 * MiB, 2), (4 * MiB, 2), (6 * MiB, 3)],
            Leaves(t, ipa, size));
    }

    [Fact]
    public void IPA_and_PA_congruent_but_misaligned_to_2M_gives_pages_only()
    {
        var t = Create();
        t.Map(2 * MiB, 4 * MiB, 0x80_0000_1000, Normal(t));
        Assert.All(Leaves(t, 2 * MiB, 4 * MiB), l => Assert.Equal(3, l.Level));
        Assert.Equal(1024, Leaves(t, 2 * MiB, 4 * MiB).Count);
    }

    [Theory]
    [InlineData(4 * KiB, 3)]
    [InlineData(2 * MiB, 2)]
    [InlineData(GiB, 1)]
    [InlineData(ulong.MaxValue, 1)]
    public void Caller_limits_the_leaf_size(ulong maxSize, int expectedLevel)
    {
        var t = Create();
        t.Map(GiB, GiB, 0x40_0000_0000, Normal(t), maxSize);
        Assert.All(Leaves(t, GiB, GiB), l => Assert.Equal(expectedLevel, l.Level));
    }

    [Fact]
    public void Level_0_never_gets_a_block_with_4K_and_48_bit_OA()
    {
        var t = Create(48);
        Assert.Equal(0, t.Geometry.StartLevel);
        t.Map(0, 512 * GiB, 0, Normal(t));
        var leaves = Leaves(t, 0, 512 * GiB);
        Assert.Equal(512, leaves.Count);
        Assert.All(leaves, l => Assert.Equal(1, l.Level));
    }

    [Theory]
    [InlineData(Granule.Size16K, 42, 32UL * 1024 * 1024, 2)]
    [InlineData(Granule.Size64K, 48, 512UL * 1024 * 1024, 2)]
    public void Sixteen_K_and_64K_use_level_2_blocks_only(Granule g, int ipaBits, ulong blockSize, int level)
    {
        var t = Create(ipaBits, g);
        ulong bigRange = t.Geometry.LevelSize(1); // a level-1 range: must still be level-2 blocks (KVM_PGTABLE_MIN_BLOCK_LEVEL = 2)
        t.Map(bigRange, bigRange, bigRange, Normal(t));
        var leaves = Leaves(t, bigRange, bigRange);
        Assert.All(leaves, l => Assert.Equal(level, l.Level));
        Assert.Equal(bigRange / blockSize, (ulong)leaves.Count);
    }

    [Fact]
    public void Invalid_arguments_are_EINVAL_and_outside_the_IPA_space_ERANGE()
    {
        var t = Create(40);
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0x1800, 4 * KiB, 0, Normal(t)));
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0, 4 * KiB, 0x800, Normal(t)));
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0, 0, 0, Normal(t)));
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0, 4 * KiB, 1UL << 48, Normal(t))); // OA beyond 48 bits
        Assert.Equal(Stage2Errno.EINVAL, t.Map(0, 4 * KiB, 0, Normal(t), maxMappingSize: 1024));
        Assert.Equal(Stage2Errno.ERANGE, t.Map((1UL << 40) - 4 * KiB, 8 * KiB, 0, Normal(t)));
        Assert.Equal(Stage2Errno.ERANGE, t.Unmap(1UL << 40, 4 * KiB));
        Assert.Equal(8 * (long)KiB, t.TableBytes);
    }

    [Fact]
    public void Mapping_the_same_leaf_again_is_EAGAIN_for_a_fault_and_keeps_the_old_permissions()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.Read));
        // Same output and attributes, more permissions: stage2_pte_needs_update says no; the permission fault path relaxes instead.
        Assert.Equal(Stage2Errno.EAGAIN, t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.ReadWrite), handleFault: true));
        Assert.Equal(S2Permissions.Read, t.GetLeaf(GiB).Descriptor.Permissions);
        Assert.Equal(Stage2Errno.None, t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.ReadWrite)));
        Assert.Equal(1, t.Counters.LeavesInstalled);
        Assert.Equal(2, t.Counters.MapNoChange);
    }

    [Fact]
    public void Mapping_a_page_inside_a_block_replaces_the_block_by_a_table_and_drops_the_rest()
    {
        // stage2_map_walk_leaf: "Accesses beyond 'end' that fall within the new table will be mapped lazily."
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t));
        Assert.Equal(Stage2Errno.None, t.Map(GiB + 8 * KiB, 4 * KiB, 0x7000_0000, Normal(t), 4 * KiB));
        Assert.Equal([(GiB + 8 * KiB, 3)], Leaves(t, GiB, 2 * MiB));
        Assert.Equal(0x7000_0000UL, t.Translate(GiB + 8 * KiB, S2AccessKind.Read).Pa);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 3), t.Translate(GiB, S2AccessKind.Read).Fault);
    }

    [Fact]
    public void Mapping_a_block_over_a_table_replaces_the_table_and_frees_it()
    {
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t), 4 * KiB);
        long withTable = t.TableBytes;
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t));
        Assert.Equal([(GiB, 2)], Leaves(t, GiB, 2 * MiB));
        Assert.Equal(withTable - 4 * (long)KiB, t.TableBytes);
    }
}
