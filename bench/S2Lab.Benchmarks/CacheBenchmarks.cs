using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Benchmarks;

/// <summary>
/// The data-carrying cache model with its default geometry (1 MiB, 8 ways). A hit reads 8 bytes from a line held;
/// a read miss evicts a clean line and fills from the PoC; a write miss writes a dirty line back first.
/// Run: <c>dotnet run -c Release --project bench/S2Lab.Benchmarks -- --filter '*CacheBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
public class CacheBenchmarks
{
    private const ulong Base = 0x80_0000_0000;
    private const int HitLines = 4096;
    private const int MissLines = 1 << 16;
    private static readonly MemoryAttributes Wb = MemoryAttributes.NormalWriteBack;

    private CacheSystem _cache = null!;
    private readonly byte[] _buffer = new byte[8];
    private ulong _next;

    [GlobalSetup]
    public void Setup()
    {
        _cache = new CacheSystem(new SparseLineMemory());
        for (var i = 0; i < HitLines; i++)
        {
            _cache.Read(Accessor.Cpu(0), Base + (ulong)i * CacheLine.Size, Wb, _buffer);
        }
    }

    [Benchmark(OperationsPerInvoke = HitLines)]
    public byte ReadHit()
    {
        for (var i = 0; i < HitLines; i++)
        {
            _cache.Read(Accessor.Cpu(i & 3), Base + (ulong)i * CacheLine.Size + 8, Wb, _buffer);
        }

        return _buffer[0];
    }

    /// <summary>Streams past the cache (each invocation continues where the last stopped, so lines are never held).</summary>
    [Benchmark(OperationsPerInvoke = MissLines)]
    public byte ReadMiss()
    {
        for (var i = 0; i < MissLines; i++)
        {
            _cache.Read(Accessor.Cpu(0), Base + (1UL << 32) + (_next++ % (1UL << 20)) * CacheLine.Size, Wb, _buffer);
        }

        return _buffer[0];
    }

    [Benchmark(OperationsPerInvoke = MissLines)]
    public byte WriteMiss()
    {
        for (var i = 0; i < MissLines; i++)
        {
            _cache.Write(Accessor.Cpu(0), Base + (2UL << 32) + (_next++ % (1UL << 20)) * CacheLine.Size, Wb, _buffer);
        }

        return _buffer[0];
    }
}
