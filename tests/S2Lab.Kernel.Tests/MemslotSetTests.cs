using CsCheck;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Tests.Support;

namespace S2Lab.Kernel.Tests;

/// <summary>
/// The flat gfn index of <see cref="MemslotSet"/> against a sorted-dictionary model, at the sizes where its leaves
/// split, pack, merge and empty, with its internal invariants checked after every operation.
/// </summary>
public class MemslotSetTests
{
    private const int Leaf = MemslotSet.LeafCapacity;

    /// <summary>A sorted model: base gfn -> (id, npages).</summary>
    private sealed class Model
    {
        public readonly SortedDictionary<ulong, (int Id, ulong N)> Slots = new();
        private ulong[]? _keys;

        public void Add(int id, ulong b, ulong n)
        {
            Slots[b] = (id, n);
            _keys = null;
        }

        public void Remove(ulong b)
        {
            Slots.Remove(b);
            _keys = null;
        }

        public int? Find(ulong gfn)
        {
            _keys ??= Slots.Keys.ToArray();
            var i = Array.BinarySearch(_keys, gfn);
            if (i < 0)
                i = ~i - 1;
            return i >= 0 && gfn - _keys[i] < Slots[_keys[i]].N ? Slots[_keys[i]].Id : null;
        }

        public bool Overlaps(ulong start, ulong end, int exceptId) =>
            Slots.Any(kv => kv.Value.Id != exceptId && kv.Key < end && start < kv.Key + kv.Value.N);
    }

    /// <summary>The gfns around one slot where an off-by-one in the index shows: before, first, last, one past.</summary>
    private static IEnumerable<ulong> Edges(ulong b, ulong n) => [b - 1, b, b + n - 1, b + n];

    private static void AssertSame(MemslotSet set, Model model, IEnumerable<ulong> probes)
    {
        set.CheckInvariants();
        foreach (var g in probes)
            Assert.Equal(model.Find(g), set.Find(g)?.Id);
        Assert.Equal(model.Slots.Count, set.Count);
        Assert.Equal(model.Slots.Values.Select(v => v.Id), set.InGfnOrder().Select(s => s.Id));
    }

    private static void AssertAllEdges(MemslotSet set, Model model) =>
        AssertSame(set, model, model.Slots.SelectMany(kv => Edges(kv.Key, kv.Value.N)).Append(0UL).Append(ulong.MaxValue));

    [Fact]
    public void Random_creates_and_deletes_across_many_leaves_match_the_model()
    {
        // Up to 1500 live slots in a gfn space of 24,000 pages: tens of leaves, several summary groups, and delete
        // rates from rare to dominant, so splits, merges and emptied leaves all happen.
        Gen.Select(Gen.Int[0, 1499], Gen.Int[0, 23_999], Gen.Int[1, 9], Gen.Int[0, 99]).Array[200, 2500]
            .Select(Gen.Int[5, 95], (ops, deletePercent) => (ops, deletePercent))
            .Sample(t =>
            {
                var (ops, deletePercent) = t;
                var set = new MemslotSet(1500);
                var model = new Model();
                foreach (var (id, start, len, dice) in ops)
                {
                    var b = (ulong)start;
                    var n = (ulong)len;
                    if (dice < deletePercent)
                    {
                        if (set.ById(id) is { } old)
                        {
                            set.Remove(old);
                            model.Remove(old.BaseGfn);
                            AssertSame(set, model, Edges(old.BaseGfn, old.NPages));
                        }
                        continue;
                    }
                    var overlaps = model.Overlaps(b, b + n, id);
                    Assert.Equal(overlaps, set.Overlaps(b, b + n, id));
                    if (overlaps || set.ById(id) is not null)
                        continue;
                    set.Add(MemslotFactory.Make(id, b, n));
                    model.Add(id, b, n);
                    AssertSame(set, model, Edges(b, n));
                }
                AssertAllEdges(set, model);
            }, iter: 40);
    }

    [Theory]
    [InlineData(Leaf - 1)]
    [InlineData(Leaf)]
    [InlineData(Leaf + 1)]
    [InlineData(2 * Leaf)]
    [InlineData(2 * Leaf + 1)]
    [InlineData(MemslotSet.TopGroup * Leaf + 1)] // one leaf past the first summary group
    [InlineData(32767)]
    public void Creating_slots_in_gfn_order_fills_leaves_and_deleting_them_all_empties_the_index(int slots)
    {
        var set = new MemslotSet(slots);
        var model = new Model();
        for (var i = 0; i < slots; i++)
        {
            set.Add(MemslotFactory.Make(i, (ulong)i * 4, 2));
            model.Add(i, (ulong)i * 4, 2);
        }
        // In-order creation appends: every leaf but the last is full.
        Assert.Equal((slots + Leaf - 1) / Leaf, set.LeafCount);
        AssertAllEdges(set, model);
        var rnd = new Random(slots);
        foreach (var i in Enumerable.Range(0, slots).OrderBy(_ => rnd.Next()).ToList())
        {
            set.Remove(set.ById(i)!);
            model.Remove((ulong)i * 4);
            if (set.Count % 97 == 0 || set.Count < 3 * Leaf)
                AssertSame(set, model, Edges((ulong)i * 4, 2).Concat(Edges((ulong)i * 4 + 4, 2)));
        }
        Assert.Equal(0, set.LeafCount);
        Assert.Equal(0UL, set.TotalPages);
        AssertAllEdges(set, model);
        // The emptied index is reusable.
        set.Add(MemslotFactory.Make(0, 100, 1));
        Assert.Equal(0, set.Find(100)?.Id);
        Assert.Null(set.Find(99));
        set.CheckInvariants();
    }

    [Theory]
    [InlineData(Leaf + 1)]
    [InlineData(5 * Leaf + 3)]
    [InlineData(3000)]
    public void Creating_slots_in_reverse_gfn_order_splits_at_the_front(int slots)
    {
        var set = new MemslotSet(slots);
        var model = new Model();
        for (var i = slots - 1; i >= 0; i--)
        {
            set.Add(MemslotFactory.Make(i, (ulong)i * 3 + 1, 1));
            model.Add(i, (ulong)i * 3 + 1, 1);
        }
        // Front splits leave halves, never fewer than half a leaf each (bar the last one to receive slots).
        Assert.InRange(set.LeafCount, (slots + Leaf - 1) / Leaf, slots / (Leaf / 2) + 1);
        AssertAllEdges(set, model);
    }

    [Fact]
    public void Two_half_leaves_merge_once_they_fit_in_half_a_leaf()
    {
        // 2 * Leaf slots in order, then one more in the middle of the first (full) leaf: it splits into halves.
        var set = new MemslotSet(4 * Leaf);
        var model = new Model();
        for (var i = 0; i < 2 * Leaf; i++)
        {
            set.Add(MemslotFactory.Make(i, (ulong)i * 10, 1));
            model.Add(i, (ulong)i * 10, 1);
        }
        Assert.Equal(2, set.LeafCount);
        set.Add(MemslotFactory.Make(2 * Leaf, 5, 1));
        model.Add(2 * Leaf, 5, 1);
        Assert.Equal(3, set.LeafCount);
        AssertAllEdges(set, model);
        // Delete from the two halves (Leaf / 2 + 1 and Leaf / 2 slots) until together they hold Leaf / 2: they merge.
        var firstTwo = set.InGfnOrder().Take(Leaf + 1).ToList();
        var removed = 0;
        foreach (var s in firstTwo.Where((_, k) => k % 2 == 0))
        {
            set.Remove(s);
            model.Remove(s.BaseGfn);
            removed++;
            set.CheckInvariants();
            Assert.Equal(Leaf + 1 - removed <= Leaf / 2 ? 2 : 3, set.LeafCount);
        }
        AssertAllEdges(set, model);
    }

    [Fact]
    public void Slots_at_the_ends_of_the_gfn_space_are_found_and_padding_never_matches()
    {
        var set = new MemslotSet(4);
        Assert.Null(set.Find(0));
        Assert.Null(set.Find(ulong.MaxValue));
        set.Add(MemslotFactory.Make(0, 0, 1));
        set.Add(MemslotFactory.Make(1, ulong.MaxValue - 8, 8)); // [2^64 - 9, 2^64 - 1): the last gfn is not inside
        Assert.Equal(0, set.Find(0)?.Id);
        Assert.Null(set.Find(1));
        Assert.Null(set.Find(ulong.MaxValue - 9));
        Assert.Equal(1, set.Find(ulong.MaxValue - 8)?.Id);
        Assert.Equal(1, set.Find(ulong.MaxValue - 1)?.Id);
        Assert.Null(set.Find(ulong.MaxValue));
        Assert.True(set.Overlaps(ulong.MaxValue - 2, ulong.MaxValue, 0));
        Assert.False(set.Overlaps(ulong.MaxValue - 2, ulong.MaxValue, 1));
        set.CheckInvariants();
    }

    [Fact]
    public void The_last_used_slot_never_answers_for_a_removed_or_replaced_slot()
    {
        var set = new MemslotSet(8);
        var a = MemslotFactory.Make(1, 100, 10);
        set.Add(a);
        Assert.Same(a, set.Find(105));
        Assert.Same(a, set.Find(101)); // served by the cache
        var a2 = MemslotFactory.Make(1, 100, 10);
        set.Replace(a, a2);
        Assert.Same(a2, set.Find(101));
        Assert.Same(a2, set.ById(1));
        set.Remove(a2);
        Assert.Null(set.Find(101));
        Assert.Null(set.ById(1));
        set.Add(MemslotFactory.Make(2, 104, 1));
        Assert.Equal(2, set.Find(104)?.Id);
        Assert.Null(set.Find(103)); // not the old cached range
        set.CheckInvariants();
    }
}
