using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Arch.Tests.Caches;

/// <summary>API details of the cache model that the vectors do not reach.</summary>
public class CacheSystemTests
{
    private const ulong GiB = 1UL << 30;
    private static readonly MemoryAttributes Wb = MemoryAttributes.NormalWriteBack;

    private static CacheSystem Small(SparseLineMemory memory) =>
        new(memory, new CacheOptions { DataLines = 8, DataWays = 2, InstructionLines = 4, InstructionWays = 2 });

    [Fact]
    public void A_range_larger_than_the_cache_cleans_exactly_the_held_lines_inside_it()
    {
        var memory = new SparseLineMemory();
        var cache = Small(memory);
        ulong[] inside = [GiB, GiB + 0x1000, 2 * GiB - 64];
        ulong[] outside = [GiB - 64, 2 * GiB, 3 * GiB];
        foreach (var pa in inside.Concat(outside))
        {
            cache.Write(Accessor.Cpu(0), pa, Wb, [0xAB]);
        }

        cache.Maintain(CacheOp.DcCivac, GiB, GiB);

        var one = new byte[1];
        foreach (var pa in inside)
        {
            Assert.Equal(LineState.Invalid, cache.StateOf(pa));
            memory.ReadBytes(pa, one);
            Assert.Equal(0xAB, one[0]);
        }

        foreach (var pa in outside)
        {
            Assert.Equal(LineState.Dirty, cache.StateOf(pa));
            memory.ReadBytes(pa, one);
            Assert.Equal(0, one[0]);
        }
    }

    [Fact]
    public void A_range_larger_than_the_icache_invalidates_only_lines_inside_it()
    {
        var cache = Small(new SparseLineMemory());
        var code = new byte[4];
        cache.Fetch(Accessor.Cpu(0), GiB + 0x40, Wb, code);
        cache.Fetch(Accessor.Cpu(0), 3 * GiB, Wb, code);
        cache.InvalidateInstructionCache(GiB, GiB);
        Assert.False(cache.InstructionCacheHolds(0, GiB + 0x40));
        Assert.True(cache.InstructionCacheHolds(0, 3 * GiB));
    }

    [Fact]
    public void Maintain_IC_IVAU_invalidates_every_CPUs_icache_line_and_leaves_the_dcache()
    {
        // IC IVAU is broadcast to the Inner Shareable domain (D7.5.7) and is not a data cache operation (D7.5.9).
        var cache = Small(new SparseLineMemory());
        var code = new byte[4];
        cache.Write(Accessor.Cpu(0), GiB, Wb, [0xAB]);
        cache.Fetch(Accessor.Cpu(0), GiB + 0x40, Wb, code);
        cache.Fetch(Accessor.Cpu(1), GiB + 0x40, Wb, code);
        cache.Fetch(Accessor.Cpu(1), GiB + 0x1000, Wb, code);
        cache.Maintain(CacheOp.IcIvau, GiB + 0x40);
        Assert.False(cache.InstructionCacheHolds(0, GiB + 0x40));
        Assert.False(cache.InstructionCacheHolds(1, GiB + 0x40));
        Assert.True(cache.InstructionCacheHolds(1, GiB + 0x1000));
        Assert.Equal(LineState.Dirty, cache.StateOf(GiB));
    }

    [Fact]
    public void Speculative_fills_and_demand_misses_are_counted_apart()
    {
        var cache = Small(new SparseLineMemory());
        Assert.True(cache.Prefetch(0x1000, Wb));
        Assert.False(cache.Prefetch(0x2000, MemoryAttributes.NormalNonCacheable()));
        cache.Read(Accessor.Cpu(0), 0x1000, Wb, new byte[8]);
        Assert.Equal(1, cache.Counters.SpeculativeFills);
        Assert.Equal(0, cache.Counters.DataMisses);
        Assert.Equal(1, cache.Counters.DataHits);
    }

    [Theory]
    [InlineData(CacheOp.DcIvac, true, CacheOp.DcCivac)]
    [InlineData(CacheOp.DcIvac, false, CacheOp.DcIvac)]
    [InlineData(CacheOp.DcCvac, true, CacheOp.DcCvac)]
    [InlineData(CacheOp.DcCivac, true, CacheOp.DcCivac)]
    public void DC_IVAC_at_EL1_with_HCR_EL2_VM_is_a_clean_and_invalidate(CacheOp op, bool vm, CacheOp expected) =>
        Assert.Equal(expected, CacheOps.AtEl1(op, vm));

    [Theory]
    [InlineData(0x00, DataCaching.None)] // Device-nGnRnE
    [InlineData(0x04, DataCaching.None)] // Device-nGnRE
    [InlineData(0x44, DataCaching.None)] // Normal iNC oNC
    [InlineData(0xFF, DataCaching.WriteBack)]
    [InlineData(0xBB, DataCaching.WriteThrough)]
    [InlineData(0x4F, DataCaching.WriteBack)] // outer NC, inner WB: dirty data can sit in the inner cache
    [InlineData(0xF4, DataCaching.WriteBack)] // outer WB, inner NC: dirty data can sit in the outer cache
    [InlineData(0xBF, DataCaching.WriteBack)] // outer WT, inner WB
    [InlineData(0x4B, DataCaching.WriteThrough)] // outer NC, inner WT
    public void The_path_follows_the_effective_cacheability(byte mair, DataCaching expected) =>
        Assert.Equal(expected, CacheSystem.CachingOf(Mair.Decode(mair, default).Attributes));

    [Fact]
    public void Only_CPUs_fetch_instructions()
    {
        var cache = Small(new SparseLineMemory());
        Assert.Throws<ArgumentException>(() => cache.Fetch(Accessor.CoherentDevice(0), 0, Wb, new byte[4]));
    }

    [Theory]
    [InlineData(10, 4, "not a positive multiple")]
    [InlineData(24, 4, "not a power of two")]
    [InlineData(0, 1, "not a positive multiple")]
    public void Impossible_geometry_is_refused_with_the_reason(int lines, int ways, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            new CacheSystem(new SparseLineMemory(), new CacheOptions { DataLines = lines, DataWays = ways }));
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData("cpu3", AccessorKind.Cpu, 3)]
    [InlineData("cdev0", AccessorKind.CoherentDevice, 0)]
    [InlineData("ncdev12", AccessorKind.NonCoherentDevice, 12)]
    public void Accessors_round_trip_through_text(string text, AccessorKind kind, int id)
    {
        Assert.True(Accessor.TryParse(text, out var a));
        Assert.Equal(new Accessor(kind, id), a);
        Assert.Equal(text, a.ToString());
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("gpu0")]
    [InlineData("cpu-1")]
    public void Bad_accessor_text_is_refused(string text) => Assert.False(Accessor.TryParse(text, out _));

    [Fact]
    public void The_line_store_refuses_unaligned_or_short_lines()
    {
        var memory = new SparseLineMemory();
        Assert.Throws<ArgumentException>(() => memory.WriteLine(0x20, new byte[64]));
        Assert.Throws<ArgumentException>(() => memory.WriteLine(0x40, new byte[32]));
    }

    [Fact]
    public void Evict_all_writes_every_dirty_line_back()
    {
        var memory = new SparseLineMemory();
        var cache = Small(memory);
        for (var i = 0UL; i < 8; i++)
        {
            cache.Write(Accessor.Cpu(0), i * 64, Wb, [(byte)(i + 1)]);
        }

        cache.EvictAll();
        Assert.Equal(0, cache.DataLinesHeld);
        var one = new byte[1];
        for (var i = 0UL; i < 8; i++)
        {
            memory.ReadBytes(i * 64, one);
            Assert.Equal((byte)(i + 1), one[0]);
        }
    }
}
