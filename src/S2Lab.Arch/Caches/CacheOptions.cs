namespace S2Lab.Arch.Caches;

/// <summary>What the data cache does with a dirty line between the write that dirtied it and a clean.</summary>
public enum DirtyLinePolicy : byte
{
    /// <summary>
    /// The worst case for coherence and the default: a dirty line stays dirty until a clean, an explicit
    /// <see cref="CacheSystem.Evict"/>, or capacity pressure in its set (which evicts clean lines first).
    /// </summary>
    Retain,

    /// <summary>
    /// Every write to a write-back line is written back to the PoC at once (the line stays, clean). The architecture
    /// allows this too (D7.5.1: no location is guaranteed to stay incoherent); tests use it to show a hazard go away.
    /// </summary>
    WriteBackEagerly,
}

/// <summary>
/// Whether a line that some translation regime maps Normal Cacheable can be allocated at this moment. The layer that
/// knows the mappings (the host kernel: its linear map, a VMM's cacheable mmap, a guest's stage 2) implements it.
/// </summary>
public interface ISpeculativeAllocation
{
    /// <summary>True when the line at <paramref name="linePa"/> has a Normal Cacheable mapping anywhere (D7.5.1).</summary>
    bool MayAllocate(ulong linePa);
}

/// <summary>Size and behaviour of a <see cref="CacheSystem"/>. The defaults are the documented worst case.</summary>
public sealed record CacheOptions
{
    /// <summary>Lines in the shared data cache (default 16,384 = 1 MiB). A power of two, a multiple of the ways.</summary>
    public int DataLines { get; init; } = 16_384;

    /// <summary>Associativity of the data cache (default 8).</summary>
    public int DataWays { get; init; } = 8;

    /// <summary>Lines in each CPU's instruction cache (default 1,024 = 64 KiB). A power of two, a multiple of the ways.</summary>
    public int InstructionLines { get; init; } = 1_024;

    /// <summary>Associativity of each instruction cache (default 4).</summary>
    public int InstructionWays { get; init; } = 4;

    /// <summary>CTR_EL0.IDC: instruction fetches see data held in the data cache (no clean to PoU needed).</summary>
    public bool Idc { get; init; }

    /// <summary>CTR_EL0.DIC: instruction caches are coherent with data writes (no I-cache invalidation needed).</summary>
    public bool Dic { get; init; }

    /// <summary>Dirty-line policy (default <see cref="DirtyLinePolicy.Retain"/>).</summary>
    public DirtyLinePolicy DirtyLines { get; init; } = DirtyLinePolicy.Retain;

    /// <summary>
    /// Instruction fetches from Normal Non-cacheable memory are held in the I-cache (default true: D7.5.7 permits it,
    /// and the sequence for modifying code must invalidate the I-cache even for Non-cacheable code).
    /// </summary>
    public bool InstructionCacheHoldsNonCacheable { get; init; } = true;

    /// <summary>
    /// Speculative allocation (D7.5.1). When set, every line an invalidation removes is allocated again at once (clean,
    /// from the PoC) if this says a cacheable mapping of it exists: the worst moment for a speculative fill, since a
    /// later write that bypasses the cache leaves that copy stale. Null: no speculative fills besides
    /// <see cref="CacheSystem.Prefetch"/>.
    /// </summary>
    public ISpeculativeAllocation? Speculation { get; init; }

    /// <summary>Null when the options are usable, else what is wrong.</summary>
    public string? Validate()
    {
        static string? Geometry(string what, int lines, int ways)
        {
            if (ways <= 0 || lines <= 0 || lines % ways != 0)
            {
                return $"{what}: {lines} lines is not a positive multiple of {ways} ways";
            }

            var sets = lines / ways;
            return (sets & (sets - 1)) != 0 ? $"{what}: {sets} sets is not a power of two" : null;
        }

        return Geometry("data cache", DataLines, DataWays) ?? Geometry("instruction cache", InstructionLines, InstructionWays);
    }
}
