using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Cli.Bench;

/// <summary>Shared set-up of the cache-model measurements: the default geometry (1 MiB data cache, 8 ways).</summary>
internal static class CacheBench
{
    public const ulong Base = 0x80_0000_0000;

    /// <summary>Lines touched by the hit loop: a quarter of the default cache, so every access hits.</summary>
    public const int HitLines = 4096;

    /// <summary>Lines streamed by the miss loops: 64 MiB, 64 times the cache, so every access misses.</summary>
    public const int MissLines = 1 << 20;

    public static readonly MemoryAttributes Wb = MemoryAttributes.NormalWriteBack;

    public static ulong Sink;
}

/// <summary>An 8-byte cacheable read that hits the data cache.</summary>
internal sealed class CacheHitRead : IQuickBench
{
    public string Name => "cache_hit_read_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var cache = new CacheSystem(new SparseLineMemory());
        var buffer = new byte[8];
        for (var i = 0; i < CacheBench.HitLines; i++)
        {
            cache.Read(Accessor.Cpu(0), CacheBench.Base + (ulong)i * CacheLine.Size, CacheBench.Wb, buffer);
        }

        const int Rounds = 64;
        var ns = BenchTimer.BestNsPerOp(settings, (long)Rounds * CacheBench.HitLines, () =>
        {
            for (var r = 0; r < Rounds; r++)
            {
                for (var i = 0; i < CacheBench.HitLines; i++)
                {
                    cache.Read(Accessor.Cpu(i & 3), CacheBench.Base + (ulong)i * CacheLine.Size + 8, CacheBench.Wb, buffer);
                }
            }

            CacheBench.Sink += buffer[0];
        });
        yield return new BenchResult(Name, ns, "ns");
    }
}

/// <summary>An 8-byte cacheable read that misses: a clean line is evicted and the new one filled from the PoC.</summary>
internal sealed class CacheMissRead : IQuickBench
{
    public string Name => "cache_miss_read_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var cache = new CacheSystem(new SparseLineMemory());
        var buffer = new byte[8];
        var ns = BenchTimer.BestNsPerOp(settings, CacheBench.MissLines, () =>
        {
            for (var i = 0; i < CacheBench.MissLines; i++)
            {
                cache.Read(Accessor.Cpu(0), CacheBench.Base + (ulong)i * CacheLine.Size, CacheBench.Wb, buffer);
            }
        });
        yield return new BenchResult(Name, ns, "ns");
    }
}

/// <summary>
/// An 8-byte cacheable write that misses: a dirty line is written back to the PoC (a dictionary of lines) and the new
/// one filled. Also reports the bytes one default cache system allocates (fixed: it never grows with memory).
/// </summary>
internal sealed class CacheMissWrite : IQuickBench
{
    public string Name => "cache_miss_write_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var cache = new CacheSystem(new SparseLineMemory());
        var modelBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        var buffer = new byte[8];
        var ns = BenchTimer.BestNsPerOp(settings, CacheBench.MissLines, () =>
        {
            for (var i = 0; i < CacheBench.MissLines; i++)
            {
                cache.Write(Accessor.Cpu(0), CacheBench.Base + (ulong)i * CacheLine.Size, CacheBench.Wb, buffer);
            }
        });
        yield return new BenchResult(Name, ns, "ns");
        yield return new BenchResult("cache_model_bytes", modelBytes / 1024.0 / 1024.0, "MiB");
    }
}

/// <summary>
/// DC CIVAC over a 1 GiB block (what KVM does when it maps a cacheable 1 GiB block without FWB) with the default cache
/// full of dirty lines: the range is larger than the cache, so the model scans the cache once.
/// </summary>
internal sealed class CacheCleanInvalidate1GiB : IQuickBench
{
    public string Name => "cache_civac_1gib_us";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var cache = new CacheSystem(new SparseLineMemory());
        var buffer = new byte[8];
        var lines = cache.Options.DataLines;
        var secs = BenchTimer.BestSeconds(settings,
            () =>
            {
                for (var i = 0; i < lines; i++)
                {
                    cache.Write(Accessor.Cpu(0), CacheBench.Base + (ulong)i * CacheLine.Size, CacheBench.Wb, buffer);
                }
            },
            () => cache.Maintain(CacheOp.DcCivac, CacheBench.Base, 1UL << 30));
        yield return new BenchResult(Name, secs * 1e6, "us");
    }
}
