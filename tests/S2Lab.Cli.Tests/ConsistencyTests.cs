using System.CommandLine;
using System.Text.Json;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Cli.Tests;

/// <summary>One output flag (--format) and one design spelling (DESIGN[:VARIANT]) across the commands.</summary>
public class ConsistencyTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    private static readonly string Replay = Path.Combine(Path.GetTempPath(), $"s2lab-consistency-{Guid.NewGuid():N}.jsonl");

    /// <summary>Every command that prints results, with arguments that make it quick.</summary>
    public static TheoryData<string[]> Commands()
    {
        File.WriteAllText(Replay, "{\"op\":\"create_vm\"}\n{\"op\":\"set\",\"v\":1,\"slot\":0,\"gpa\":1,\"size\":4096,\"uaddr\":4096,\"expect\":\"EINVAL\"}\n");
        return new()
        {
            new[] { "demo", "--design", "linux-6.9" },
            new[] { "run", CliRunner.RepoFile("scenarios", "ram-both-hosts.yaml"), "--design", "linux-6.17" },
            new[] { "explain", "--host", "neoverse-v2", "--design", "linux-6.17", "--region", "anon", "--s1", "0xFF" },
            new[] { "combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b0110" },
            new[] { "combine", "--table" },
            new[] { "memslots", "replay", Replay },
            new[] { "bench", "--filter", "tlb_hit", "--iterations", "1" },
        };
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Format_json_prints_one_JSON_document_on_every_command(string[] args)
    {
        var (exit, output, err) = Run([.. args, "--format", "json"]);
        Assert.True(exit is 0 or 1, err);
        using var doc = JsonDocument.Parse(output);
        Assert.True(doc.RootElement.ValueKind is JsonValueKind.Object or JsonValueKind.Array);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void Format_table_is_the_default_and_a_bad_format_exits_2_on_every_command(string[] args)
    {
        var (_, byDefault, _) = Run(args);
        var (_, table, _) = Run([.. args, "--format", "table"]);
        if (args[0] != "bench")
            Assert.Equal(byDefault, table); // bench output holds measured times
        Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(table));
        var (exit, output, err) = Run([.. args, "--format", "xml"]);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains("--format must be", err, StringComparison.Ordinal);
    }

    [Fact]
    public void The_old_json_flag_is_a_usage_error_pointing_to_format_json()
    {
        var (exit, _, err) = Run("combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b0110", "--json");
        Assert.Equal(2, exit);
        Assert.Contains("--format json", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Memslots_replay_json_gives_each_operation_its_line_result_and_expectation()
    {
        Commands();
        var (exit, output, _) = Run("memslots", "replay", Replay, "--format", "json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var ops = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, ops.Count);
        Assert.Equal(("create_vm", "0"), (ops[0].GetProperty("op").GetString(), ops[0].GetProperty("result").GetString()));
        // kvm_set_memory_region: a guest_phys_addr that is not page-aligned is EINVAL (spec section 4), as the line expects.
        Assert.Equal(("set", 2, "EINVAL", true), (ops[1].GetProperty("op").GetString(), ops[1].GetProperty("line").GetInt32(),
            ops[1].GetProperty("expect").GetString(), ops[1].GetProperty("matches").GetBoolean()));
    }

    /// <summary>Every variant the demo runs, as DESIGN:VARIANT, is accepted by run, demo and (for the kernel's and usemem variants) explain.</summary>
    [Fact]
    public void Every_variant_the_demo_reports_is_selectable_by_its_name_in_run_demo_and_explain()
    {
        var demo = DemoScenario.Load();
        foreach (var d in DesignCatalog.Designs)
        {
            foreach (var v in DesignCatalog.VariantsFor(d, demo.Variants).Where(v => v.Label.Length > 0))
            {
                var spelling = $"{d}:{v.Label}";
                Assert.NotNull(DesignCatalog.ParseChoice(spelling, demo.Variants, allowAll: true, out _));
                Assert.NotNull(DesignCatalog.ParseChoice(spelling, DesignCatalog.ExplainVariants, allowAll: false, out var err));
                var (exit, output, stderr) = Run("explain", "--host", "neoverse-n1", "--design", spelling, "--region", "nvgrace-usemem", "--s1", "0xFF", "--format", "json");
                Assert.True(exit == 0, $"{spelling}: {err} {stderr}");
                using var doc = JsonDocument.Parse(output);
                Assert.StartsWith(d, doc.RootElement.GetProperty("design").GetString(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Memslots_replay_takes_the_same_design_spelling_and_refuses_a_VMM_choice()
    {
        Commands();
        Assert.Equal(0, Run("memslots", "replay", Replay, "--design", "proposal-module-param:param=on").Exit);
        var (exit, _, err) = Run("memslots", "replay", Replay, "--design", "proposal-module-param=on");
        Assert.Equal(2, exit);
        Assert.Contains("DESIGN:VARIANT", err, StringComparison.Ordinal);
        (exit, _, err) = Run("memslots", "replay", Replay, "--design", "proposal-memslot-flag:flag=prefer-cacheable");
        Assert.Equal(2, exit);
        Assert.Contains("flags", err, StringComparison.Ordinal);
    }
}
