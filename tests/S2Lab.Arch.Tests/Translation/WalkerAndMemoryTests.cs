using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

public class WalkerAndMemoryTests
{
    private struct CountingVisitor : IS2Visitor
    {
        public int Leaves, Invalid, Pre, Post;

        public readonly S2WalkFlags Flags => S2WalkFlags.Leaf | S2WalkFlags.TablePre | S2WalkFlags.TablePost;

        public int Leaf(ref S2VisitContext ctx)
        {
            if (new S2Descriptor(ctx.Old).IsLeaf(ctx.Level))
            {
                Leaves++;
            }
            else
            {
                Invalid++;
            }

            return 0;
        }

        public int TablePre(ref S2VisitContext ctx)
        {
            Pre++;
            return 0;
        }

        public int TablePost(ref S2VisitContext ctx)
        {
            Post++;
            return 0;
        }
    }

    [Fact]
    public void A_custom_visitor_sees_every_entry_the_range_touches_once()
    {
        var t = Create();
        t.Map(GiB, 16 * KiB, 0x1000_0000, Normal(t), 4 * KiB);
        t.Map(GiB + 2 * MiB, 2 * MiB, 0x4000_0000, Normal(t));
        var v = new CountingVisitor();
        Assert.Equal(0, t.Walk(GiB, 4 * MiB, ref v));
        Assert.Equal(4 + 1, v.Leaves);         // 4 pages + one 2M block
        Assert.Equal(512 - 4, v.Invalid);       // the rest of the level-3 table
        Assert.Equal((2, 2), (v.Pre, v.Post));  // level-1 entry -> level-2 table; level-2 entry -> level-3 table
        Assert.Equal(-(int)Stage2Errno.ERANGE, t.Walk(1UL << 40, 4 * KiB, ref v));
    }

    [Fact]
    public void Freed_pages_are_reused_zeroed_and_multi_page_allocations_are_aligned()
    {
        var m = new SimulatedTableMemory(Granule.Size4K, basePa: 0x10_0000);
        Assert.True(m.TryZallocPages(1, out ulong a));
        m.PhysToVirt(a, 512).Fill(0xdead);
        m.FreePages(a, 1);
        Assert.True(m.TryZallocPages(1, out ulong b));
        Assert.Equal(a, b);
        Assert.True(m.PhysToVirt(b, 512).IndexOfAnyExcept(0UL) < 0);
        Assert.True(m.TryZallocPages(16, out ulong c));
        Assert.Equal(0UL, (c - m.BasePa) % (16 * 4 * KiB));
        Assert.Equal(17 * 4 * (long)KiB, m.BytesInUse);
        // The pages skipped for alignment are handed out next.
        Assert.True(m.TryZallocPages(1, out ulong d));
        Assert.True(d < c);
    }

    [Fact]
    public void Memory_capacity_is_enforced()
    {
        var m = new SimulatedTableMemory(maxBytes: 8 * (long)KiB);
        Assert.True(m.TryZallocPages(2, out _));
        Assert.False(m.TryZallocPages(1, out _));
    }

    [Fact]
    public void Event_list_is_capped_and_counts_what_it_drops()
    {
        var t = new Stage2PageTable(Geometry(), new Stage2TableOptions { RecordEvents = true, MaxEvents = 3 });
        t.Map(GiB, 16 * KiB, 0x1000_0000, Normal(t), 4 * KiB);
        t.Unmap(GiB, 16 * KiB); // 4 removals + 4 TLBIs + table removals
        Assert.Equal(3, t.Events.Count);
        Assert.True(t.EventsDropped > 0);
        t.ClearEvents();
        Assert.Empty(t.Events);
        Assert.Equal(0, t.EventsDropped);
    }
}
