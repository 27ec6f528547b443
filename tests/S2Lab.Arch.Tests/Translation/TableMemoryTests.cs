using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Table memory equals what the hardware format needs.</summary>
public class TableMemoryTests
{
    [Theory]
    [InlineData(40, 16)] // 8 KiB concatenated level-1 root + level 2 + level 3
    [InlineData(48, 16)] // 4 KiB level-0 root + levels 1, 2, 3
    [InlineData(36, 12)] // start level 1 with 64 entries (one 4 KiB page) + levels 2, 3
    [InlineData(32, 20)] // start level 2: 4 concatenated tables (16 KiB) + level 3
    public void One_4K_page_costs_the_root_plus_one_table_per_lower_level(int ipaBits, int kib)
    {
        var t = Create(ipaBits);
        t.Map(0, 4 * KiB, 0x1000_0000, Normal(t));
        Assert.Equal(kib * (long)KiB, t.TableBytes);
    }

    [Fact]
    public void One_GiB_of_4K_pages_needs_513_tables_which_is_2_004_MiB()
    {
        var t = Create(40);
        long root = t.TableBytes;
        t.Map(GiB, GiB, 0x40_0000_0000, Normal(t), 4 * KiB);
        long bytes = t.TableBytes - root;
        Assert.Equal(513 * 4 * (long)KiB, bytes); // 512 level-3 tables + 1 level-2 table
        Assert.InRange(bytes / (double)MiB, 2.003, 2.005);
    }

    [Fact]
    public void One_GiB_of_2M_blocks_needs_one_table_and_a_1G_block_none()
    {
        var t = Create(40);
        t.Map(GiB, GiB, 0x40_0000_0000, Normal(t), 2 * MiB);
        Assert.Equal(12 * (long)KiB, t.TableBytes);
        t.Map(2 * GiB, GiB, 0x80_0000_0000, Normal(t));
        Assert.Equal(12 * (long)KiB, t.TableBytes);
    }

    [Fact]
    public void Unmapping_everything_returns_to_the_root_and_destroy_frees_it()
    {
        var memory = new SimulatedTableMemory();
        var t = new Stage2PageTable(Geometry(40), new Stage2TableOptions { Memory = memory });
        t.Map(GiB, 64 * MiB, 0x40_0000_0000, Normal(t), 4 * KiB);
        t.Map(8 * GiB, 4 * GiB, 0x80_0000_0000, Normal(t));
        t.Unmap(0, 1UL << 40);
        Assert.Equal(8 * (long)KiB, t.TableBytes);
        Assert.Equal(8 * (long)KiB, memory.BytesInUse);
        t.Map(GiB, 4 * KiB, 0x40_0000_0000, Normal(t));
        t.Destroy();
        Assert.Equal(0, memory.BytesInUse);
        Assert.Equal(0, t.TableBytes);
        Assert.Equal(Stage2Errno.EINVAL, t.Map(GiB, 4 * KiB, 0, Normal(t)));
    }

    [Fact]
    public void Out_of_table_memory_is_ENOMEM_and_the_tables_stay_consistent()
    {
        var memory = new SimulatedTableMemory(maxBytes: 20 * (long)KiB); // root (2 pages) + 3 tables
        var t = new Stage2PageTable(Geometry(40), new Stage2TableOptions { Memory = memory });
        Assert.Equal(Stage2Errno.None, t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t)));            // level 2 + level 3
        Assert.Equal(Stage2Errno.None, t.Map(GiB + 2 * MiB, 2 * MiB, 0x4020_0000, Normal(t)));   // block: no table
        Assert.Equal(Stage2Errno.None, t.Map(GiB + 4 * MiB, 4 * KiB, 0x2000_0000, Normal(t)));   // last page
        Assert.Equal(Stage2Errno.ENOMEM, t.Map(GiB + 6 * MiB, 4 * KiB, 0x3000_0000, Normal(t)));
        Assert.Equal(Stage2Errno.ENOMEM, t.Split(GiB + 2 * MiB, 2 * MiB));
        Assert.Equal(2, t.GetLeaf(GiB + 2 * MiB).Level); // the block is intact
        Assert.Equal(0x4020_0000UL + 0x123, t.Translate(GiB + 2 * MiB + 0x123, S2AccessKind.Read).Pa);
        Assert.Equal(0x1000_0000UL, t.Translate(GiB, S2AccessKind.Read).Pa);
        t.Unmap(GiB, 4 * KiB); // frees its level-3 table
        Assert.Equal(Stage2Errno.None, t.Map(GiB + 6 * MiB, 4 * KiB, 0x3000_0000, Normal(t)));
    }

    [Fact]
    public void Concatenated_root_is_allocated_aligned_to_its_size()
    {
        var memory = new SimulatedTableMemory();
        memory.TryZallocPages(1, out _); // misalign the bump pointer
        var geo = Geometry(32); // 4 concatenated level-2 tables
        var t = new Stage2PageTable(geo, new Stage2TableOptions { Memory = memory });
        Assert.Equal(0UL, t.RootPa % geo.RootTableBytes);
        Assert.Equal(16 * (long)KiB, t.TableBytes);
    }

    [Fact]
    public void VTTBR_holds_the_VMID_and_the_root()
    {
        var t = Create(vmid: 0x2a);
        Assert.Equal((0x2aUL << 48) | t.RootPa, t.Vttbr);
    }
}
