using CsCheck;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Arch.Tests.Caches;

/// <summary>
/// The multi-line path of <see cref="CacheSystem"/> (a VMM copying a page, the kernel zeroing one) reads the PoC for
/// the whole access at once and skips the fill of lines a write replaces whole. Neither may change what the model does:
/// an access over several lines must leave the caches, the PoC and the counters exactly as the same access made one
/// line at a time does, and return the same bytes. A tiny cache (8 lines, 2 ways) makes the access evict its own lines.
/// </summary>
public class CacheBulkPathTests
{
    private const ulong Base = 0x8000_0000;
    private const int Lines = 24;

    private static readonly MemoryAttributes Wb = MemoryAttributes.NormalWriteBack;
    private static readonly MemoryAttributes Wt = MemoryAttributes.Normal(CacheAttributes.FromNibble(0b1011), CacheAttributes.FromNibble(0b1011)); // WT RWA
    private static readonly MemoryAttributes Nc = MemoryAttributes.NormalNonCacheable();

    private enum Kind
    {
        Read,
        Write,
        NcWrite,
        DeviceWrite,
        Clean,
        CleanInvalidate,
        Evict,
    }

    /// <summary>One step: an access of Length bytes at line Line + Offset, or a maintenance op on one line.</summary>
    private readonly record struct Step(Kind Kind, bool WriteThrough, int Line, int Offset, int Length, byte Fill)
    {
        public ulong Pa => Base + (ulong)((Line * CacheLine.Size) + Offset);

        public override string ToString() => $"{Kind}{(WriteThrough ? " WT" : "")} line{Line}+{Offset} len {Length} 0x{Fill:X2}";
    }

    private static readonly Gen<Step> GenStep =
        Gen.Select(Gen.Enum<Kind>(), Gen.Bool, Gen.Int[0, Lines - 14], Gen.Int[0, CacheLine.Size - 1], Gen.Int[1, 13 * CacheLine.Size], Gen.Byte)
            .Select((k, wt, line, offset, length, fill) => new Step(k, wt, line, offset, length, fill));

    private static CacheOptions Tiny(DirtyLinePolicy policy) =>
        new() { DataLines = 8, DataWays = 2, InstructionLines = 4, InstructionWays = 2, DirtyLines = policy };

    private static byte[] Bytes(in Step s)
    {
        var b = new byte[s.Length];
        for (var i = 0; i < b.Length; i++)
        {
            b[i] = (byte)(s.Fill + i);
        }

        return b;
    }

    /// <summary>Runs <paramref name="steps"/>; with <paramref name="split"/>, each access is made one line at a time.</summary>
    private static (List<byte[]> Reads, SparseLineMemory Poc, CacheSystem Cache) Run(Step[] steps, bool split, DirtyLinePolicy policy)
    {
        var poc = new SparseLineMemory();
        var cache = new CacheSystem(poc, Tiny(policy));
        var reads = new List<byte[]>();
        var cpu = Accessor.Cpu(0);
        foreach (var s in steps)
        {
            var attrs = s.WriteThrough ? Wt : Wb;
            switch (s.Kind)
            {
                case Kind.Read:
                    {
                        var dest = new byte[s.Length];
                        foreach (var (pa, index, n) in Pieces(s.Pa, s.Length, split))
                        {
                            cache.Read(cpu, pa, attrs, dest.AsSpan(index, n));
                        }

                        reads.Add(dest);
                        break;
                    }

                case Kind.Write:
                    {
                        var src = Bytes(s);
                        foreach (var (pa, index, n) in Pieces(s.Pa, s.Length, split))
                        {
                            cache.Write(cpu, pa, attrs, src.AsSpan(index, n));
                        }

                        break;
                    }

                case Kind.NcWrite:
                    cache.Write(cpu, s.Pa, Nc, Bytes(s).AsSpan(0, Math.Min(s.Length, 8)));
                    break;
                case Kind.DeviceWrite:
                    cache.Write(Accessor.NonCoherentDevice(0), s.Pa, Wb, Bytes(s).AsSpan(0, Math.Min(s.Length, 8)));
                    break;
                case Kind.Clean:
                    cache.Maintain(CacheOp.DcCvac, s.Pa);
                    break;
                case Kind.CleanInvalidate:
                    cache.Maintain(CacheOp.DcCivac, s.Pa);
                    break;
                case Kind.Evict:
                    cache.Evict(s.Pa);
                    break;
            }
        }

        return (reads, poc, cache);
    }

    private static IEnumerable<(ulong Pa, int Index, int Length)> Pieces(ulong pa, int length, bool split)
    {
        if (!split)
        {
            yield return (pa, 0, length);
            yield break;
        }

        for (var index = 0; index < length;)
        {
            var n = Math.Min(length - index, CacheLine.Size - (int)((pa + (ulong)index) & (CacheLine.Size - 1)));
            yield return (pa + (ulong)index, index, n);
            index += n;
        }
    }

    [Fact]
    public void A_multi_line_access_leaves_the_same_caches_PoC_counters_and_bytes_as_the_same_access_line_by_line() =>
        Gen.Select(GenStep.Array[1, 40], Gen.Bool).Sample((steps, eager) =>
        {
            var policy = eager ? DirtyLinePolicy.WriteBackEagerly : DirtyLinePolicy.Retain;
            var whole = Run(steps, split: false, policy);
            var lines = Run(steps, split: true, policy);
            Assert.Equal(lines.Reads.Count, whole.Reads.Count);
            for (var i = 0; i < whole.Reads.Count; i++)
            {
                Assert.Equal(lines.Reads[i], whole.Reads[i]);
            }

            var a = new byte[CacheLine.Size];
            var b = new byte[CacheLine.Size];
            for (var line = 0; line < Lines; line++)
            {
                var pa = Base + (ulong)(line * CacheLine.Size);
                whole.Poc.ReadLine(pa, a);
                lines.Poc.ReadLine(pa, b);
                Assert.True(a.AsSpan().SequenceEqual(b), $"PoC line {line} differs");
                Assert.Equal(lines.Cache.StateOf(pa), whole.Cache.StateOf(pa));
                Assert.Equal(lines.Cache.TryPeekLine(pa, a), whole.Cache.TryPeekLine(pa, b));
                Assert.True(a.AsSpan().SequenceEqual(b), $"cached line {line} differs");
            }

            var (cw, cl) = (whole.Cache.Counters, lines.Cache.Counters);
            Assert.Equal((cl.DataHits, cl.DataMisses, cl.WriteBacks, cl.CapacityEvictions), (cw.DataHits, cw.DataMisses, cw.WriteBacks, cw.CapacityEvictions));
        }, iter: 400);

    /// <summary>A PoC that counts how it is asked.</summary>
    private sealed class CountingPoc : IPointOfCoherence
    {
        private readonly SparseLineMemory _inner = new();

        public int LineReads { get; private set; }

        public int BulkReads { get; private set; }

        public void ReadLine(ulong linePa, Span<byte> line)
        {
            LineReads++;
            _inner.ReadLine(linePa, line);
        }

        public void WriteLine(ulong linePa, ReadOnlySpan<byte> line) => _inner.WriteLine(linePa, line);

        public void ReadLines(ulong linePa, Span<byte> lines)
        {
            BulkReads++;
            for (var i = 0; i < lines.Length; i += CacheLine.Size)
            {
                _inner.ReadLine(linePa + (ulong)i, lines.Slice(i, CacheLine.Size));
            }
        }
    }

    [Fact]
    public void A_page_read_that_misses_asks_the_PoC_once_and_a_page_write_reads_nothing_from_it()
    {
        var poc = new CountingPoc();
        var cache = new CacheSystem(poc);
        var page = new byte[4096];
        cache.Write(Accessor.Cpu(0), 0x1_0000, Wb, page);
        Assert.Equal((0, 0), (poc.LineReads, poc.BulkReads));

        cache.Read(Accessor.Cpu(0), 0x2_0000, Wb, page);
        Assert.Equal((0, 1), (poc.LineReads, poc.BulkReads));

        // Every line held: no PoC read at all. A write of part of a line fills that line, once.
        cache.Read(Accessor.Cpu(0), 0x2_0000, Wb, page);
        Assert.Equal((0, 1), (poc.LineReads, poc.BulkReads));
        cache.Write(Accessor.Cpu(0), 0x3_0010, Wb, new byte[8]);
        Assert.Equal((1, 1), (poc.LineReads, poc.BulkReads));
    }

    [Fact]
    public void HoldsNonZeroLineIn_agrees_with_the_list_of_held_non_zero_lines() =>
        GenStep.Array[1, 40].Sample(steps =>
        {
            var (_, _, cache) = Run(steps, split: false, DirtyLinePolicy.Retain);
            var held = new List<ulong>();
            cache.CollectNonZeroLines(held);
            for (var line = 0; line < Lines; line++)
            {
                var pa = Base + (ulong)(line * CacheLine.Size);
                Assert.Equal(held.Contains(pa), cache.HoldsNonZeroLineIn(pa, CacheLine.Size));
            }

            Assert.Equal(held.Count > 0, cache.HoldsNonZeroLineIn(Base, Lines * CacheLine.Size));
        }, iter: 200);

    [Fact]
    public void TryReadHit_serves_only_a_read_within_one_held_line_and_leaves_a_miss_untouched()
    {
        var poc = new CountingPoc();
        var cache = new CacheSystem(poc);
        var buf = new byte[8];
        Assert.False(cache.TryReadHit(0x1000, buf)); // not held: nothing allocated, nothing counted
        Assert.Equal((0, 0L, 0L), (cache.DataLinesHeld, cache.Counters.DataHits, cache.Counters.DataMisses));

        cache.Write(Accessor.Cpu(0), 0x1000, Wb, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        Assert.True(cache.TryReadHit(0x1001, buf));
        Assert.Equal(new byte[] { 2, 3, 4, 5, 6, 7, 8, 9 }, buf);
        Assert.Equal(1, cache.Counters.DataHits);
        Assert.False(cache.TryReadHit(0x103C, buf)); // crosses into the next line
        Assert.Equal(1, cache.Counters.DataHits);
    }
}
