using System.Diagnostics;
using S2Lab.Arch.Translation;

namespace S2Lab.Cli.Bench;

/// <summary>Shared set-up of the stage-2 table measurements: 4K granule, 40-bit IPA (KVM's default), no FWB.</summary>
internal static class S2Bench
{
    public const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

    /// <summary>Where guest RAM starts in the IPA space (QEMU virt puts RAM at 1 GiB).</summary>
    public const ulong RamIpa = 1 * GiB;

    /// <summary>An arbitrary host physical base for guest RAM, 1 GiB aligned.</summary>
    public const ulong RamPa = 0x80_0000_0000;

    /// <summary>Defeats dead-code elimination of measured results.</summary>
    public static ulong Sink;

    public static Stage2PageTable NewTable(int ipaBits = 40, bool fwb = false) =>
        new(VtcrEl2.ForIpaSize(ipaBits).Validate(new Stage2Features(48)).GetOrThrow(), new Stage2TableOptions { Fwb = fwb, Dic = true });

    public static S2LeafAttributes Normal(Stage2PageTable t) => new(t.NormalMemAttr, S2Permissions.ReadWrite);

    public static void MustMap(Stage2PageTable t, ulong ipa, ulong size, ulong pa, ulong maxSize)
    {
        var r = t.Map(ipa, size, pa, Normal(t), maxSize);
        if (r != Stage2Errno.None)
        {
            throw new InvalidOperationException($"map failed: {r}");
        }
    }
}

/// <summary>Table memory for 1 GiB mapped with 4K pages, without the fixed start-level table (hardware: 512 + 1 tables = 2.0039 MiB).</summary>
internal sealed class TableBytesPerGib4K : IQuickBench
{
    public string Name => "table_bytes_per_gib_4k";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var t = S2Bench.NewTable();
        long root = t.TableBytes;
        S2Bench.MustMap(t, S2Bench.RamIpa, S2Bench.GiB, S2Bench.RamPa, 4 * S2Bench.KiB);
        yield return new BenchResult(Name, (t.TableBytes - root) / (double)S2Bench.MiB, "MiB/GiB");
    }
}

/// <summary>
/// A timed map into fresh tables. Setup (untimed) builds <see cref="TablesPerCall"/> empty tables; the body maps into
/// each of them once. Every warm-up and timed call gets new tables, so no call ever remaps an already-mapped table.
/// </summary>
internal abstract class FreshTableMapBench : IQuickBench
{
    public abstract string Name { get; }

    public BenchKind Kind => BenchKind.Quick;

    /// <summary>The unit of <see cref="OpsPerTable"/> (e.g. pages).</summary>
    protected abstract string OpUnit { get; }

    /// <summary>Tables mapped per body call (more than one when a single map is too short to time).</summary>
    internal virtual int TablesPerCall => 1;

    /// <summary>Leaves one <see cref="MapInto"/> writes.</summary>
    internal abstract long OpsPerTable { get; }

    /// <summary>The timed work on one fresh table.</summary>
    internal abstract void MapInto(Stage2PageTable t);

    /// <summary>The untimed setup of one call: new, empty tables.</summary>
    internal Stage2PageTable[] Setup()
    {
        var tables = new Stage2PageTable[TablesPerCall];
        for (int i = 0; i < tables.Length; i++)
        {
            tables[i] = S2Bench.NewTable();
        }

        return tables;
    }

    /// <summary>
    /// Warm-up and timing by <see cref="BenchTimer.Measure"/>; <paramref name="beforeBody"/> (untimed, for tests) sees
    /// the tables each body call is about to map into.
    /// </summary>
    internal BenchMeasurement Measure(BenchSettings settings, Action<Stage2PageTable[]>? beforeBody = null) =>
        BenchTimer.Measure(settings, OpsPerTable * TablesPerCall,
            () =>
            {
                var tables = Setup();
                beforeBody?.Invoke(tables);
                return tables;
            },
            tables =>
            {
                foreach (var t in tables)
                {
                    MapInto(t);
                }
            });

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var m = Measure(settings);
        yield return new BenchResult(Name, OpsPerTable * TablesPerCall / m.BestSeconds, OpUnit + "/s");
    }
}

/// <summary>Mapping 1 GiB contiguous with 4K pages (force_pte) into an empty table.</summary>
internal sealed class Map4KPagesPerSecond : FreshTableMapBench
{
    public override string Name => "map_4k_pages_per_s";

    protected override string OpUnit => "pages";

    internal override long OpsPerTable => (long)(S2Bench.GiB >> 12);

    internal override void MapInto(Stage2PageTable t) => S2Bench.MustMap(t, S2Bench.RamIpa, S2Bench.GiB, S2Bench.RamPa, 4 * S2Bench.KiB);
}

/// <summary>Unmapping 1 GiB of 4K pages (TLBI by IPA per page, tables freed).</summary>
internal sealed class Unmap4KPagesPerSecond : IQuickBench
{
    public string Name => "unmap_4k_pages_per_s";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const long pages = (long)(S2Bench.GiB >> 12);
        var m = BenchTimer.Measure(settings, pages,
            () =>
            {
                var t = S2Bench.NewTable();
                S2Bench.MustMap(t, S2Bench.RamIpa, S2Bench.GiB, S2Bench.RamPa, 4 * S2Bench.KiB);
                return t;
            },
            t => t.Unmap(S2Bench.RamIpa, S2Bench.GiB));
        yield return new BenchResult(Name, pages / m.BestSeconds, "pages/s");
    }
}

/// <summary>Mapping 64 GiB with 2 MiB blocks into an empty table.</summary>
internal sealed class Map2MBlocksPerSecond : FreshTableMapBench
{
    private const ulong Size = 64 * S2Bench.GiB;

    public override string Name => "map_2m_blocks_per_s";

    protected override string OpUnit => "blocks";

    internal override long OpsPerTable => (long)(Size / (2 * S2Bench.MiB));

    internal override void MapInto(Stage2PageTable t) => S2Bench.MustMap(t, S2Bench.RamIpa, Size, S2Bench.RamPa, 2 * S2Bench.MiB);
}

/// <summary>Mapping the 1 TiB of a 40-bit IPA space with 1 GiB blocks, into 16 empty tables per body call.</summary>
internal sealed class Map1GBlocksPerSecond : FreshTableMapBench
{
    private const ulong Size = 1024 * S2Bench.GiB;

    public override string Name => "map_1g_blocks_per_s";

    protected override string OpUnit => "blocks";

    internal override int TablesPerCall => 16;

    internal override long OpsPerTable => (long)(Size / S2Bench.GiB);

    internal override void MapInto(Stage2PageTable t) => S2Bench.MustMap(t, 0, Size, 0, S2Bench.GiB);
}

/// <summary>Translating IPAs whose translation is in the TLB (256 pages, read accesses).</summary>
internal sealed class TlbHitNs : IQuickBench
{
    public string Name => "tlb_hit_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var t = S2Bench.NewTable();
        S2Bench.MustMap(t, S2Bench.RamIpa, 16 * S2Bench.MiB, S2Bench.RamPa, 4 * S2Bench.KiB);
        const int pages = 256;
        const int rounds = 4096;
        for (int i = 0; i < pages; i++)
        {
            t.Translate(S2Bench.RamIpa + ((ulong)i << 12), S2AccessKind.Read);
        }

        double ns = BenchTimer.BestNsPerOp(settings, (long)pages * rounds, () =>
        {
            ulong sum = 0;
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < pages; i++)
                {
                    sum += t.Translate(S2Bench.RamIpa + ((ulong)i << 12) + 0x10, S2AccessKind.Read).Pa;
                }
            }

            S2Bench.Sink += sum;
        });
        if (t.Tlb.Misses != pages)
        {
            throw new InvalidOperationException($"expected only hits after the first pass, saw {t.Tlb.Misses} misses");
        }

        yield return new BenchResult(Name, ns, "ns");
    }
}

/// <summary>
/// A full 3-level table walk (40-bit IPA, 4K pages: levels 1, 2, 3), TLB bypassed. <c>walk_ns</c> walks 64 MiB of pages
/// (32 level-3 tables, which stay in the CPU caches) in a scattered order; <c>walk_1g_scattered_ns</c> walks 1 GiB
/// (2 MiB of level-3 tables), where host cache misses dominate, as they would for a hardware walker.
/// </summary>
internal sealed class WalkNs : IQuickBench
{
    public string Name => "walk_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        yield return new BenchResult(Name, Measure(settings, 64 * S2Bench.MiB), "ns");
        yield return new BenchResult("walk_1g_scattered_ns", Measure(settings, S2Bench.GiB), "ns");
    }

    private static double Measure(BenchSettings settings, ulong mapped)
    {
        var t = S2Bench.NewTable();
        S2Bench.MustMap(t, S2Bench.RamIpa, mapped, S2Bench.RamPa, 4 * S2Bench.KiB);
        int n = (int)(mapped >> 12);
        var ipas = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            // A multiplicative permutation of the pages: consecutive walks touch different level-3 tables.
            ulong page = ((ulong)i * 40503UL) & (ulong)(n - 1);
            ipas[i] = S2Bench.RamIpa + (page << 12) + 0x20;
        }

        return BenchTimer.BestNsPerOp(settings, n, () =>
        {
            ulong sum = 0;
            foreach (ulong ipa in ipas)
            {
                sum += t.Translate(ipa, S2AccessKind.Read, useTlb: false).Pa;
            }

            S2Bench.Sink += sum;
        });
    }
}

/// <summary>
/// The scale run: 64 GiB mapped with 4K pages (16.7 million leaves) into one fresh table, with the time, the table
/// memory and the peak resident memory of the process.
/// </summary>
internal sealed class Scale64G4K : IQuickBench
{
    public string Name => "scale_64g_4k_map_s";

    public BenchKind Kind => BenchKind.Scale;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const ulong size = 64 * S2Bench.GiB;
        // Warm-up by the rule on the same code path at 1 GiB (fresh tables), then one timed map into a fresh table: a
        // second 64 GiB map would cost another 128 MiB of tables, and must never go into the already-mapped one. The
        // peak resident memory is this run's (VmHWM reset first, see RunCost).
        _ = new Map4KPagesPerSecond().Measure(settings with { Iterations = 1 });
        var t = S2Bench.NewTable();
        long root = t.TableBytes;
        var cost = RunCost.Measure(() => S2Bench.MustMap(t, S2Bench.RamIpa, size, S2Bench.RamPa, 4 * S2Bench.KiB));
        double secs = cost.WallSeconds;
        var probe = t.Translate(S2Bench.RamIpa + size - 8, S2AccessKind.Read, useTlb: false);
        if (probe.IsFault || probe.Pa != S2Bench.RamPa + size - 8)
        {
            throw new InvalidOperationException($"scale run: last page translates wrongly ({probe})");
        }

        yield return new BenchResult(Name, secs, "s");
        yield return new BenchResult("scale_64g_4k_pages_per_s", (size >> 12) / secs, "pages/s");
        yield return new BenchResult("scale_64g_4k_table_mib", (t.TableBytes - root) / (double)S2Bench.MiB, "MiB");
        yield return new BenchResult("scale_64g_4k_cpu_s", cost.CpuSeconds, "s");
        yield return new BenchResult(cost.PeakIsThisRun ? "scale_64g_4k_peak_rss_mib" : "scale_64g_4k_process_peak_rss_mib", cost.PeakRssBytes / (double)S2Bench.MiB, "MiB");
        GC.KeepAlive(t);
    }
}
