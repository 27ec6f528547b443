using CsCheck;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Arch.Tests.Caches;

/// <summary>
/// Properties of the cache model over random access sequences, checked against a byte-per-address record of the
/// last write in program order. A small data cache (8 lines, 2 ways, 4 sets) over 12 lines makes capacity evictions
/// frequent, so the properties also cover replacement.
/// </summary>
public class CachePropertyTests
{
    private const int Lines = 12;
    private const ulong Base = 0x8000_0000;

    private enum Op
    {
        Write,
        Read,
        Clean,
        CleanInvalidate,
        Evict,
        Prefetch,
        DeviceWrite,
        DeviceRead,
    }

    /// <summary>One generated step: what, by which CPU, where (line, offset, length ≤ the line's end), which bytes.</summary>
    private readonly record struct Step(Op Op, int Cpu, int Line, int Offset, byte[] Data)
    {
        public ulong Pa => Base + (ulong)(Line * CacheLine.Size + Offset);

        public override string ToString() => $"{Op} cpu{Cpu} line{Line}+{Offset} {Convert.ToHexStringLower(Data)}";
    }

    private static Gen<Step> GenStep(params Op[] ops) =>
        Gen.Select(Gen.Int[0, ops.Length - 1], Gen.Int[0, 3], Gen.Int[0, Lines - 1], Gen.Int[0, CacheLine.Size - 1], Gen.Byte.Array[1, 8])
            .Select((op, cpu, line, offset, data) =>
                new Step(ops[op], cpu, line, offset, data.AsSpan(0, Math.Min(data.Length, CacheLine.Size - offset)).ToArray()));

    private static CacheOptions Small(DirtyLinePolicy policy = DirtyLinePolicy.Retain, ISpeculativeAllocation? speculation = null) =>
        new() { DataLines = 8, DataWays = 2, InstructionLines = 4, InstructionWays = 2, DirtyLines = policy, Speculation = speculation };

    private static readonly MemoryAttributes Wb = MemoryAttributes.NormalWriteBack;
    private static readonly MemoryAttributes Nc = MemoryAttributes.NormalNonCacheable();

    /// <summary>The last value written to each byte, in program order (zero before any write).</summary>
    private sealed class LastWrite
    {
        private readonly byte[] _bytes = new byte[Lines * CacheLine.Size];

        public void Write(in Step s) => s.Data.CopyTo(_bytes, s.Line * CacheLine.Size + s.Offset);

        public byte[] Expected(in Step s) => _bytes.AsSpan(s.Line * CacheLine.Size + s.Offset, s.Data.Length).ToArray();

        public byte[] Line(int line) => _bytes.AsSpan(line * CacheLine.Size, CacheLine.Size).ToArray();
    }

    /// <summary>
    /// (a) D7.5.1: with every access Normal Write-Back (one attribute, Inner Shareable), and coherent devices, every read
    /// returns the last write, whatever the CPU, the cleans, evictions and prefetches in between.
    /// </summary>
    [Fact]
    public void All_cacheable_accesses_are_coherent() =>
        GenStep(Op.Write, Op.Read, Op.Clean, Op.CleanInvalidate, Op.Evict, Op.Prefetch, Op.DeviceWrite, Op.DeviceRead)
            .Array[1, 80]
            .Sample(steps =>
            {
                var cache = new CacheSystem(new SparseLineMemory(), Small(speculation: CacheVectorFile.EveryLineCacheable.Instance));
                var last = new LastWrite();
                foreach (var s in steps)
                {
                    switch (s.Op)
                    {
                        case Op.Write:
                            cache.Write(Accessor.Cpu(s.Cpu), s.Pa, Wb, s.Data);
                            last.Write(s);
                            break;
                        case Op.DeviceWrite:
                            cache.Write(Accessor.CoherentDevice(0), s.Pa, default, s.Data);
                            last.Write(s);
                            break;
                        case Op.Read or Op.DeviceRead:
                            {
                                var got = new byte[s.Data.Length];
                                var who = s.Op == Op.Read ? Accessor.Cpu(s.Cpu) : Accessor.CoherentDevice(0);
                                cache.Read(who, s.Pa, Wb, got);
                                if (!got.AsSpan().SequenceEqual(last.Expected(s)))
                                {
                                    return false;
                                }

                                break;
                            }

                        default:
                            Apply(cache, s);
                            break;
                    }
                }

                return cache.DataLinesHeld <= 8;
            }, iter: 300);

    /// <summary>
    /// (b) B2.11 "after writing with Write-Back, clean": after any sequence of cacheable accesses, a clean and invalidate
    /// to the PoC of a line lets a Non-cacheable reader (and a non-coherent device) see the last write of every byte.
    /// </summary>
    [Fact]
    public void After_clean_invalidate_to_PoC_a_non_cacheable_read_returns_the_last_write() =>
        Gen.Select(GenStep(Op.Write, Op.Read, Op.Evict, Op.Prefetch, Op.Clean).Array[1, 60], Gen.Int[0, Lines - 1], Gen.Bool)
            .Sample((steps, line, speculate) =>
            {
                var memory = new SparseLineMemory();
                var cache = new CacheSystem(memory, Small(speculation: speculate ? CacheVectorFile.EveryLineCacheable.Instance : null));
                var last = new LastWrite();
                foreach (var s in steps)
                {
                    if (s.Op == Op.Write)
                    {
                        cache.Write(Accessor.Cpu(s.Cpu), s.Pa, Wb, s.Data);
                        last.Write(s);
                    }
                    else if (s.Op == Op.Read)
                    {
                        cache.Read(Accessor.Cpu(s.Cpu), s.Pa, Wb, new byte[s.Data.Length]);
                    }
                    else
                    {
                        Apply(cache, s);
                    }
                }

                var pa = Base + (ulong)(line * CacheLine.Size);
                cache.Maintain(CacheOp.DcCivac, pa);
                var viaNc = new byte[CacheLine.Size];
                var viaDma = new byte[CacheLine.Size];
                cache.Read(Accessor.Cpu(0), pa, Nc, viaNc);
                cache.Read(Accessor.NonCoherentDevice(0), pa, default, viaDma);
                return viaNc.AsSpan().SequenceEqual(last.Line(line)) && viaDma.AsSpan().SequenceEqual(last.Line(line));
            }, iter: 300);

    /// <summary>
    /// B2.11's software protocol for mismatched attributes (clean after a Write-Back write, clean or invalidate before a
    /// Non-cacheable write, invalidate before a cacheable access) restores coherence even under the worst case: dirty
    /// lines retained, tiny cache, a speculative refill after every invalidation. "Before a cacheable access" includes
    /// writes: B2.11 says it of reads, but a write into a stale clean line dirties the stale bytes with it (see the
    /// vector wb-write-into-stale-clean-line-reverts-nc-write).
    /// </summary>
    [Fact]
    public void Following_the_mismatched_attribute_protocol_every_read_returns_the_last_write() =>
        Gen.Select(GenStep(Op.Write, Op.Read).Array[1, 80], Gen.Bool.Array[80])
            .Sample((steps, nonCacheable) =>
            {
                var cache = new CacheSystem(new SparseLineMemory(), Small(speculation: CacheVectorFile.EveryLineCacheable.Instance));
                var last = new LastWrite();
                for (var i = 0; i < steps.Length; i++)
                {
                    var s = steps[i];
                    var attr = nonCacheable[i] ? Nc : Wb;
                    if (s.Op == Op.Write)
                    {
                        // Before an NC write: clean (and invalidate) the Write-Back copy. Before a WB write: invalidate the
                        // copy too, as for a read, since the line's later write-back carries all its bytes (B2.11).
                        cache.Maintain(CacheOp.DcCivac, s.Pa);
                        cache.Write(Accessor.Cpu(s.Cpu), s.Pa, attr, s.Data);
                        last.Write(s);
                        if (!nonCacheable[i])
                        {
                            cache.Maintain(CacheOp.DcCvac, s.Pa);
                        }
                    }
                    else
                    {
                        if (!nonCacheable[i])
                        {
                            cache.Maintain(CacheOp.DcCivac, s.Pa);
                        }

                        var got = new byte[s.Data.Length];
                        cache.Read(Accessor.Cpu(s.Cpu), s.Pa, attr, got);
                        if (!got.AsSpan().SequenceEqual(last.Expected(s)))
                        {
                            return false;
                        }
                    }
                }

                return true;
            }, iter: 300);

    /// <summary>
    /// (c) Worst case: a Non-cacheable read after a Write-Back write with no clean between returns what the PoC held
    /// before (stale), for any bytes; with eager write-back it returns the write.
    /// </summary>
    [Fact]
    public void A_non_cacheable_read_after_an_uncleaned_cacheable_write_is_stale_unless_written_back_eagerly() =>
        Gen.Select(GenStep(Op.Write).Array[0, 20], GenStep(Op.Write), Gen.Int[0, 3], Gen.Bool)
            .Sample((before, write, reader, eager) =>
            {
                var memory = new SparseLineMemory();
                var cache = new CacheSystem(memory, Small(eager ? DirtyLinePolicy.WriteBackEagerly : DirtyLinePolicy.Retain));
                foreach (var s in before)
                {
                    cache.Write(Accessor.Cpu(s.Cpu), s.Pa, Nc, s.Data);
                }

                var old = new byte[write.Data.Length];
                memory.ReadBytes(write.Pa, old);
                cache.Write(Accessor.Cpu(write.Cpu), write.Pa, Wb, write.Data);
                var got = new byte[write.Data.Length];
                cache.Read(Accessor.Cpu(reader), write.Pa, Nc, got);
                return got.AsSpan().SequenceEqual(eager ? write.Data : old);
            }, iter: 400);

    /// <summary>
    /// (c) Whatever mix of attributes, agents, maintenance and evictions, every byte a read returns is a value some
    /// agent wrote to that byte (or the initial zero): stale data, never invented data.
    /// </summary>
    [Fact]
    public void Reads_never_return_bytes_nobody_wrote() =>
        Gen.Select(GenStep(Op.Write, Op.Read, Op.Clean, Op.CleanInvalidate, Op.Evict, Op.Prefetch, Op.DeviceWrite, Op.DeviceRead)
                .Array[1, 80], Gen.Int[0, 3].Array[80], Gen.Bool)
            .Sample((steps, attrs, speculate) =>
            {
                MemoryAttributes[] kinds = [Wb, Nc, MemoryAttributes.Device(DeviceType.nGnRE), Mair.Decode(0xBB, default).Attributes];
                var cache = new CacheSystem(new SparseLineMemory(), Small(speculation: speculate ? CacheVectorFile.EveryLineCacheable.Instance : null));
                var written = new HashSet<byte>[Lines * CacheLine.Size];
                for (var i = 0; i < written.Length; i++)
                {
                    written[i] = [0];
                }

                for (var i = 0; i < steps.Length; i++)
                {
                    var s = steps[i];
                    var who = s.Op is Op.DeviceRead or Op.DeviceWrite
                        ? (s.Cpu % 2 == 0 ? Accessor.CoherentDevice(0) : Accessor.NonCoherentDevice(1))
                        : Accessor.Cpu(s.Cpu);
                    var at = s.Line * CacheLine.Size + s.Offset;
                    switch (s.Op)
                    {
                        case Op.Write or Op.DeviceWrite:
                            cache.Write(who, s.Pa, kinds[attrs[i]], s.Data);
                            for (var b = 0; b < s.Data.Length; b++)
                            {
                                written[at + b].Add(s.Data[b]);
                            }

                            break;
                        case Op.Read or Op.DeviceRead:
                            {
                                var got = new byte[s.Data.Length];
                                cache.Read(who, s.Pa, kinds[attrs[i]], got);
                                for (var b = 0; b < got.Length; b++)
                                {
                                    if (!written[at + b].Contains(got[b]))
                                    {
                                        return false;
                                    }
                                }

                                break;
                            }

                        default:
                            Apply(cache, s);
                            break;
                    }
                }

                return true;
            }, iter: 300);

    /// <summary>D7.5.1: Non-cacheable and Device data accesses, and prefetches with those attributes, never allocate.</summary>
    [Fact]
    public void Non_cacheable_and_Device_accesses_never_allocate() =>
        Gen.Select(GenStep(Op.Write, Op.Read, Op.Prefetch).Array[1, 60], Gen.Int[0, 4].Array[60])
            .Sample((steps, kinds) =>
            {
                MemoryAttributes[] noCache =
                [
                    MemoryAttributes.NormalNonCacheable(), MemoryAttributes.Device(DeviceType.nGnRnE),
                    MemoryAttributes.Device(DeviceType.nGnRE), MemoryAttributes.Device(DeviceType.nGRE), MemoryAttributes.Device(DeviceType.GRE),
                ];
                var cache = new CacheSystem(new SparseLineMemory(), Small());
                for (var i = 0; i < steps.Length; i++)
                {
                    var s = steps[i];
                    var attr = noCache[kinds[i]];
                    _ = s.Op switch
                    {
                        Op.Write => cache.Write(Accessor.Cpu(s.Cpu), s.Pa, attr, s.Data),
                        Op.Read => cache.Read(Accessor.Cpu(s.Cpu), s.Pa, attr, new byte[s.Data.Length]),
                        _ => cache.Prefetch(s.Pa, attr) ? AccessPath.DataCacheMiss : AccessPath.Bypass,
                    };
                }

                return cache.DataLinesHeld == 0 && cache.Counters.DataMisses == 0;
            }, iter: 200);

    /// <summary>
    /// (d) Section 5.4 / D7.5.7: after CPU A fetched code and CPU B rewrote it (cacheable write, cleaned to the PoC),
    /// A's next fetch returns the old bytes unless the I-cache was invalidated (IC IVAU or IC IALLUIS) or CTR_EL0.DIC=1.
    /// </summary>
    [Fact]
    public void A_fetch_after_a_data_write_is_stale_unless_the_icache_was_invalidated_or_DIC() =>
        Gen.Select(Gen.Byte.Array[4], Gen.Byte.Array[4], Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[0, Lines - 1], Gen.Int[0, 2], Gen.Bool, Gen.Bool)
            .Where((oldCode, newCode, _, _, _, _, _, _) => !oldCode.AsSpan().SequenceEqual(newCode))
            .Sample((oldCode, newCode, fetcher, writer, line, invalidate, idc, dic) =>
            {
                var memory = new SparseLineMemory();
                var cache = new CacheSystem(memory, Small() with { Idc = idc, Dic = dic });
                var pa = Base + (ulong)(line * CacheLine.Size);
                memory.WriteBytes(pa, oldCode);
                var got = new byte[4];
                cache.Fetch(Accessor.Cpu(fetcher), pa, Wb, got);
                if (!got.AsSpan().SequenceEqual(oldCode))
                {
                    return false;
                }

                cache.Write(Accessor.Cpu(writer), pa, Wb, newCode);
                cache.Maintain(CacheOp.DcCvac, pa);
                switch (invalidate)
                {
                    case 1:
                        cache.InvalidateInstructionCache(pa);
                        break;
                    case 2:
                        cache.InvalidateInstructionCacheAllInnerShareable();
                        break;
                }

                cache.Fetch(Accessor.Cpu(fetcher), pa, Wb, got);
                var fresh = dic || invalidate != 0;
                return got.AsSpan().SequenceEqual(fresh ? newCode : oldCode);
            }, iter: 300);

    /// <summary>
    /// (d) Section 5.4: with IDC=0 a cold I-cache fills from the PoC, so a fetch of code written through the data cache
    /// and not cleaned returns the old bytes; with IDC=1 it returns the new ones.
    /// </summary>
    [Fact]
    public void A_fetch_of_uncleaned_code_is_stale_unless_IDC() =>
        Gen.Select(Gen.Byte.Array[4], Gen.Byte.Array[4], Gen.Int[0, 3], Gen.Int[0, 3], Gen.Bool, Gen.Bool)
            .Sample((oldCode, newCode, fetcher, writer, idc, dic) =>
            {
                var memory = new SparseLineMemory();
                var cache = new CacheSystem(memory, Small() with { Idc = idc, Dic = dic });
                memory.WriteBytes(Base, oldCode);
                cache.Write(Accessor.Cpu(writer), Base, Wb, newCode);
                var got = new byte[4];
                cache.Fetch(Accessor.Cpu(fetcher), Base, Wb, got);
                return got.AsSpan().SequenceEqual(idc ? newCode : oldCode);
            }, iter: 200);

    /// <summary>The data cache holds at most its configured lines, however much memory is touched (a GH200 has hundreds of GiB).</summary>
    [Fact]
    public void The_cache_never_grows_with_the_memory_touched() =>
        Gen.Select(Gen.ULong[0, (1UL << 40) - 1], Gen.Bool).Array[1, 2000].Sample(accesses =>
        {
            var cache = new CacheSystem(new SparseLineMemory(), Small());
            var buffer = new byte[8];
            foreach (var (pa, write) in accesses)
            {
                var aligned = pa & ~7UL;
                _ = write ? cache.Write(Accessor.Cpu(0), aligned, Wb, buffer) : cache.Read(Accessor.Cpu(0), aligned, Wb, buffer);
                if (cache.DataLinesHeld > 8)
                {
                    return false;
                }
            }

            return true;
        }, iter: 50);

    private static void Apply(CacheSystem cache, in Step s)
    {
        switch (s.Op)
        {
            case Op.Clean:
                cache.Maintain(CacheOp.DcCvac, s.Pa);
                break;
            case Op.CleanInvalidate:
                cache.Maintain(CacheOp.DcCivac, s.Pa);
                break;
            case Op.Evict:
                cache.Evict(s.Pa);
                break;
            case Op.Prefetch:
                cache.Prefetch(s.Pa, Wb);
                break;
            default:
                throw new InvalidOperationException($"{s.Op} is not a maintenance step");
        }
    }
}
