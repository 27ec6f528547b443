using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Translation;

namespace S2Lab.Benchmarks;

/// <summary>Fresh, empty stage-2 tables with the geometry of <c>s2lab bench</c> (40-bit IPA, 4K granule, no FWB).</summary>
internal static class FreshTables
{
    public const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    public const ulong RamIpa = GiB;
    public const ulong RamPa = 0x80_0000_0000;

    private static readonly Stage2Geometry Geometry = VtcrEl2.ForIpaSize(40).Validate(new Stage2Features(48)).GetOrThrow();

    public static Stage2PageTable New() => new(Geometry, new Stage2TableOptions { Fwb = false, Dic = true });

    /// <summary>Table pages of a table that maps nothing (the start-level tables).</summary>
    public static readonly long EmptyPages = New().TablePages;

    public static S2LeafAttributes Normal(Stage2PageTable t) => new(t.NormalMemAttr, S2Permissions.ReadWrite);

    /// <summary>Maps and checks the result (an unchecked failure would time an early return).</summary>
    public static long MustMap(Stage2PageTable t, ulong ipa, ulong size, ulong pa, ulong maxSize)
    {
        if (t.TablePages != EmptyPages)
            throw new InvalidOperationException("the table to map into is not fresh");
        var e = t.Map(ipa, size, pa, Normal(t), maxSize);
        if (e != Stage2Errno.None)
            throw new InvalidOperationException($"map failed: {e}");
        return t.TablePages;
    }
}

/// <summary>
/// Maps into tables built untimed: [IterationSetup] builds <see cref="Tables"/> empty tables, each invocation of the
/// iteration maps into the next one (so no invocation remaps a mapped table), [IterationCleanup] drops them. Unlike
/// <see cref="Stage2TableBenchmarks"/>, building and destroying the table is not timed. The counterpart of
/// <c>s2lab bench</c>'s <c>map_4k_pages_per_s</c>. Run: <c>--filter '*Stage2FreshMap*'</c>.
/// </summary>
[InvocationCount(Tables, 1)]
public class Stage2FreshMapBenchmarks
{
    private const int Tables = 16;
    private readonly Stage2PageTable[] _tables = new Stage2PageTable[Tables];
    private int _next;

    [IterationSetup]
    public void BuildTables()
    {
        for (var i = 0; i < Tables; i++)
            _tables[i] = FreshTables.New();
        _next = 0;
    }

    [IterationCleanup]
    public void DropTables() => Array.Clear(_tables);

    /// <summary>262,144 page mappings (1 GiB, 4K pages) into an empty table.</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public long Map1GiBWith4KPages() =>
        FreshTables.MustMap(_tables[_next++], FreshTables.RamIpa, FreshTables.GiB, FreshTables.RamPa, 4 * FreshTables.KiB);

    /// <summary>32,768 block mappings (64 GiB, 2 MiB blocks) into an empty table.</summary>
    [Benchmark(OperationsPerInvoke = 32_768)]
    public long Map64GiBWith2MBlocks() =>
        FreshTables.MustMap(_tables[_next++], FreshTables.RamIpa, 64 * FreshTables.GiB, FreshTables.RamPa, 2 * FreshTables.MiB);
}

/// <summary>
/// The scale run: 64 GiB with 4K pages (16.7 M leaves, 128 MiB of tables) into one table built untimed per
/// iteration (one invocation per iteration). The counterpart of <c>s2lab bench --scale</c>'s <c>scale_64g_4k_map_s</c>.
/// Run: <c>--filter '*Stage2ScaleMap*'</c>.
/// </summary>
[InvocationCount(1, 1)]
public class Stage2ScaleMapBenchmarks
{
    private Stage2PageTable? _table;

    [IterationSetup]
    public void BuildTable() => _table = FreshTables.New();

    [IterationCleanup]
    public void DropTable() => _table = null;

    /// <summary>The whole 64 GiB map (one operation).</summary>
    [Benchmark]
    public long Map64GiBWith4KPages() =>
        FreshTables.MustMap(_table!, FreshTables.RamIpa, 64 * FreshTables.GiB, FreshTables.RamPa, 4 * FreshTables.KiB);
}
