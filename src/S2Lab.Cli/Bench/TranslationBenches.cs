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

/// <summary>Mapping 1 GiB contiguous with 4K pages (force_pte) into empty tables.</summary>
internal sealed class Map4KPagesPerSecond : IQuickBench
{
    public string Name => "map_4k_pages_per_s";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        Stage2PageTable? t = null;
        double secs = BenchTimer.BestSeconds(settings,
            () => t = S2Bench.NewTable(),
            () => S2Bench.MustMap(t!, S2Bench.RamIpa, S2Bench.GiB, S2Bench.RamPa, 4 * S2Bench.KiB));
        yield return new BenchResult(Name, (S2Bench.GiB / (4 * S2Bench.KiB)) / secs, "pages/s");
    }
}

/// <summary>Unmapping 1 GiB of 4K pages (TLBI by IPA per page, tables freed).</summary>
internal sealed class Unmap4KPagesPerSecond : IQuickBench
{
    public string Name => "unmap_4k_pages_per_s";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        Stage2PageTable? t = null;
        double secs = BenchTimer.BestSeconds(settings,
            () =>
            {
                t = S2Bench.NewTable();
                S2Bench.MustMap(t, S2Bench.RamIpa, S2Bench.GiB, S2Bench.RamPa, 4 * S2Bench.KiB);
            },
            () => t!.Unmap(S2Bench.RamIpa, S2Bench.GiB));
        yield return new BenchResult(Name, (S2Bench.GiB / (4 * S2Bench.KiB)) / secs, "pages/s");
    }
}

/// <summary>Mapping 64 GiB with 2 MiB blocks.</summary>
internal sealed class Map2MBlocksPerSecond : IQuickBench
{
    public string Name => "map_2m_blocks_per_s";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        Stage2PageTable? t = null;
        const ulong size = 64 * S2Bench.GiB;
        double secs = BenchTimer.BestSeconds(settings,
            () => t = S2Bench.NewTable(),
            () => S2Bench.MustMap(t!, S2Bench.RamIpa, size, S2Bench.RamPa, 2 * S2Bench.MiB));
        yield return new BenchResult(Name, (size / (2 * S2Bench.MiB)) / secs, "blocks/s");
    }
}

/// <summary>Mapping the 1 TiB of a 40-bit IPA space with 1 GiB blocks, 16 times per timed run.</summary>
internal sealed class Map1GBlocksPerSecond : IQuickBench
{
    public string Name => "map_1g_blocks_per_s";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const int rounds = 16;
        var tables = new Stage2PageTable[rounds];
        const ulong size = 1024 * S2Bench.GiB;
        double secs = BenchTimer.BestSeconds(settings,
            () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    tables[i] = S2Bench.NewTable();
                }
            },
            () =>
            {
                foreach (var t in tables)
                {
                    S2Bench.MustMap(t, 0, size, 0, S2Bench.GiB);
                }
            });
        yield return new BenchResult(Name, rounds * (size / S2Bench.GiB) / secs, "blocks/s");
    }
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
/// The scale run: 64 GiB mapped with 4K pages (16.7 million leaves) in one table, with the time, the table memory and
/// the peak resident memory of the process.
/// </summary>
internal sealed class Scale64G4K : IQuickBench
{
    public string Name => "scale_64g_4k_map_s";

    public BenchKind Kind => BenchKind.Scale;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const ulong size = 64 * S2Bench.GiB;
        // One fresh map into fresh tables, timed once (a warm-up would map the range, and the timed run would only
        // remap it); the peak resident memory is this run's (VmHWM reset first, see RunCost).
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
