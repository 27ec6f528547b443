using System.CommandLine;
using System.Text.RegularExpressions;
using S2Lab.Arch.Translation;
using S2Lab.Cli.Bench;

namespace S2Lab.Cli.Tests;

/// <summary>
/// <c>s2lab bench</c> and its infrastructure, run in-process. No timing is asserted: only what is listed, the usage
/// errors, how many times the warm-up rule calls a body, that timed maps get fresh tables, and the README table.
/// </summary>
public class BenchCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void List_names_the_measurements_the_issues_ask_for()
    {
        var (exit, output, _) = Run("bench", "--list");
        Assert.Equal(ExitCodes.Ok, exit);
        foreach (var name in new[] { "table_bytes_per_gib_4k", "map_4k_pages_per_s", "tlb_hit_ns", "walk_ns", "kernel_memslot_lookup_32767_ns", "kernel_stage2_fault_4k_anon_ns" })
            Assert.Contains(name, output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--iterations", "0")]
    [InlineData("--filter", "no-such-measurement")]
    public void Usage_errors_exit_2_on_standard_error(params string[] extra)
    {
        var (exit, output, error) = Run(["bench", .. extra]);
        Assert.Equal(ExitCodes.BadInput, exit);
        Assert.Equal("", output);
        Assert.StartsWith("s2lab bench: ", error, StringComparison.Ordinal);
    }

    /// <summary>A rule that only counts: no time window, no time limit to speak of.</summary>
    private static WarmupRule CountingRule(int minCalls, long minOps, int quietCalls, Func<long> compiled) => new()
    {
        MinCalls = minCalls,
        MinOps = minOps,
        QuietCalls = quietCalls,
        QuietTime = TimeSpan.Zero,
        MaxTime = TimeSpan.FromHours(1),
        CompiledMethods = compiled,
    };

    [Theory]
    [InlineData(40, 0, 10, 1, 40)] // a quiet JIT: the minimum calls
    [InlineData(40, 100_000, 10, 1_000, 100)] // the operations need more calls than the minimum
    [InlineData(3, 0, 25, 1, 25)] // the quiet window is longer than the minimum
    public void Warmup_calls_the_body_the_number_of_times_the_rule_gives(int minCalls, long minOps, int quietCalls, long opsPerCall, int expectedWarmup)
    {
        var settings = new BenchSettings(Iterations: 5, Warmup: 2) { Rule = CountingRule(minCalls, minOps, quietCalls, () => 7) };
        int setups = 0, bodies = 0;
        var m = BenchTimer.Measure(settings, opsPerCall, () => ++setups, s =>
        {
            Assert.Equal(setups, s); // each body gets the state its own setup just made
            bodies++;
        });

        Assert.Equal(expectedWarmup, m.WarmupCalls);
        Assert.Equal(expectedWarmup * opsPerCall, m.WarmupOps);
        Assert.True(m.JitQuiet);
        Assert.Equal(expectedWarmup + 5, bodies);
        Assert.Equal(bodies, setups);
    }

    [Fact]
    public void Warmup_goes_on_until_no_method_has_been_compiled_for_the_quiet_window()
    {
        // The JIT compiles something during each of the first 50 calls, then nothing: the warm-up ends at call 50 + 10.
        int bodies = 0;
        var settings = new BenchSettings(Iterations: 3) { Rule = CountingRule(40, 0, 10, () => Math.Min(bodies, 50)) };
        var m = BenchTimer.Measure(settings, 1, () => 0, _ => bodies++);
        Assert.Equal(60, m.WarmupCalls);
        Assert.Equal(63, bodies);
    }

    [Fact]
    public void Warmup_stops_at_its_time_limit_and_says_the_jit_was_not_quiet()
    {
        long compiled = 0;
        var settings = new BenchSettings(Iterations: 1)
        {
            Rule = CountingRule(1, 0, 1, () => ++compiled) with { MaxTime = TimeSpan.FromMilliseconds(20) },
        };
        var m = BenchTimer.Measure(settings, 1, () => 0, _ => Thread.Sleep(1));
        Assert.False(m.JitQuiet);
    }

    [Fact]
    public void Settings_warmup_is_a_minimum_number_of_calls()
    {
        var settings = new BenchSettings(Iterations: 1, Warmup: 70) { Rule = CountingRule(5, 0, 0, () => 0) };
        Assert.Equal(70, BenchTimer.Measure(settings, 1, () => 0, _ => { }).WarmupCalls);
    }

    public static TheoryData<string> MapBenches() => [.. QuickBenchRegistry.All.OfType<FreshTableMapBench>().Select(b => b.Name)];

    [Fact]
    public void The_map_benchmarks_of_the_issue_map_into_fresh_tables()
    {
        var names = QuickBenchRegistry.All.OfType<FreshTableMapBench>().Select(b => b.Name).ToList();
        Assert.Contains("map_4k_pages_per_s", names);
        Assert.Contains("map_2m_blocks_per_s", names);
        Assert.Contains("map_1g_blocks_per_s", names);
    }

    [Theory]
    [MemberData(nameof(MapBenches))]
    public void Every_timed_map_gets_new_empty_tables(string name)
    {
        var bench = QuickBenchRegistry.All.OfType<FreshTableMapBench>().Single(b => b.Name == name);
        long emptyBytes = S2Bench.NewTable().TableBytes;
        var seen = new HashSet<Stage2PageTable>(ReferenceEqualityComparer.Instance);
        int calls = 0;
        var settings = new BenchSettings(Iterations: 2, Warmup: 0) { Rule = CountingRule(2, 0, 0, () => 0) };

        var m = bench.Measure(settings, tables =>
        {
            calls++;
            Assert.Equal(bench.TablesPerCall, tables.Length);
            foreach (var t in tables)
            {
                Assert.True(seen.Add(t), "a table was handed to a second body call");
                Assert.Equal(emptyBytes, t.TableBytes);
                Assert.True(t.Translate(S2Bench.RamIpa, S2AccessKind.Read, useTlb: false).IsFault);
                Assert.True(t.Translate(0, S2AccessKind.Read, useTlb: false).IsFault);
            }
        });

        Assert.Equal(m.WarmupCalls + 2, calls);
        // And the body does map: every table it was given now translates (checked on the last ones).
        foreach (var t in seen)
            Assert.False(t.Translate(S2Bench.RamIpa, S2AccessKind.Read, useTlb: false).IsFault);
    }

    [Fact]
    public void Readme_table_has_a_row_for_each_headline_figure()
    {
        var results = ReadmeFigures.Rows.SelectMany(r => r.Results).Distinct()
            .ToDictionary(n => n, n => new BenchResult(n, 1234.5, "x"));
        var lines = ReadmeFigures.Table(results).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("| what | measured | target |", lines[0]);
        Assert.Equal(ReadmeFigures.Rows.Count + 2, lines.Length);
        for (var i = 0; i < ReadmeFigures.Rows.Count; i++)
        {
            Assert.StartsWith($"| {ReadmeFigures.Rows[i].What} | ", lines[i + 2], StringComparison.Ordinal);
            Assert.EndsWith($" | {ReadmeFigures.Rows[i].Target} |", lines[i + 2], StringComparison.Ordinal);
        }

        foreach (var headline in new[]
                 {
                     "4K stage-2 pages", "TLB hit", "table memory", "64 GiB mapped", "memslot lookup", "stage-2 fault", "create + delete",
                     "guest read of a mapped page", "480 GiB RAM + 96 GiB HBM", "4 TiB", "wrote half its pages", "round 50", "s2lab demo",
                     "combine --batch",
                 })
            Assert.Single(lines, l => l.Contains(headline, StringComparison.Ordinal));
    }

    [Fact]
    public void Readme_table_names_a_missing_result()
    {
        var e = Assert.Throws<KeyNotFoundException>(() => ReadmeFigures.Table(new Dictionary<string, BenchResult>()));
        Assert.Contains("map_4k_pages_per_s", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Readme_results_come_from_registered_measurements()
    {
        // Every quick result a row needs is produced by a bench the generator runs (process timings aside).
        var run = ReadmeFigures.Benches.Select(n => QuickBenchRegistry.All.Single(b => b.Name == n)).ToList();
        Assert.Contains(run, b => b.Kind == BenchKind.Scale);
        var needed = ReadmeFigures.Rows.SelectMany(r => r.Results)
            .Where(n => n is not ReadmeFigures.DemoWall and not ReadmeFigures.CombineWall);
        var bySource = File.ReadAllText(CliRunner.RepoFile("src", "S2Lab.Cli", "Bench", "TranslationBenches.cs")) +
                       File.ReadAllText(CliRunner.RepoFile("src", "S2Lab.Cli", "Bench", "KernelBenches.cs")) +
                       File.ReadAllText(CliRunner.RepoFile("src", "S2Lab.Cli", "Bench", "MigrationBenches.cs"));
        // A name is either written whole, or made from a prefix passed as a literal and a "{prefix}_suffix" template.
        var literals = Regex.Matches(bySource, "\"([a-z0-9_]+)\"").Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        bool Templated(string n) => literals.Any(p => n.StartsWith(p + "_", StringComparison.Ordinal) &&
                                                     bySource.Contains("{prefix}_" + n[(p.Length + 1)..] + "\"", StringComparison.Ordinal));
        foreach (var n in needed)
            Assert.True(run.Any(b => b.Name == n) || literals.Contains(n) || Templated(n), n);
    }

    [Fact]
    public void Every_timed_readme_row_names_existing_benchmarkdotnet_benchmarks()
    {
        var source = string.Concat(Directory.GetFiles(CliRunner.RepoFile("bench", "S2Lab.Benchmarks"), "*.cs").Select(File.ReadAllText));
        foreach (var row in ReadmeFigures.Rows)
        {
            foreach (var bdn in row.Bdn)
            {
                var parts = bdn.Split('.');
                Assert.Equal(2, parts.Length);
                var cls = Regex.Match(source, $@"public class {parts[0]}\b[\s\S]*?(?=\npublic class |\z)");
                Assert.True(cls.Success, $"{row.What}: no BenchmarkDotNet class {parts[0]}");
                Assert.Matches($@"\[Benchmark[^\]]*\]\s*public \w+ {parts[1]}\(", cls.Value);
            }
        }

        // Without a BenchmarkDotNet counterpart: the table memory and the heap growth (counts, not times), and the 4 TiB
        // run (one run of minutes' worth of set-up; its point is that it works at all).
        Assert.Equal(["stage-2 table memory, 4K pages", "start and migrate a 4 TiB VM", "heap after pre-copy round 50 vs round 1 (64 MiB VM, all RAM rewritten each round)"],
            ReadmeFigures.Rows.Where(r => r.Bdn.Count == 0).Select(r => r.What));
    }

    [Fact]
    public void Combine_csv_for_the_readme_is_accepted_by_combine_batch()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-bench-test-{Environment.ProcessId}.csv");
        File.WriteAllText(path, ReadmeFigures.CombineCsv(500));
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);
            Assert.Equal(ExitCodes.Ok, exit);
            Assert.Equal("", error);
            Assert.Equal(501, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
