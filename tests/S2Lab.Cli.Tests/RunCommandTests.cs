using System.Text.Json;

namespace S2Lab.Cli.Tests;

/// <summary><c>s2lab run</c>: exit codes, formats, and errors that name file, line, column and field.</summary>
public class RunCommandTests
{
    [Fact]
    public void A_scenario_whose_expectations_hold_exits_zero_and_prints_a_table()
    {
        var (exit, output, err) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "vfio-bar-wc.yaml"));
        Assert.True(exit == 0, err + output);
        Assert.Contains("nic.bar0", output, StringComparison.Ordinal);
        Assert.Contains("Scorecard", output, StringComparison.Ordinal);
        Assert.Contains("all passed", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_row_gathering_several_steps_keeps_the_mapping_an_earlier_step_saw()
    {
        // rom-read completes (Normal-WB); rom-write leaves as an MMIO exit (READONLY memslot) and completes nothing.
        var output = CliRunner.Table(CliRunner.RepoFile("scenarios", "readonly-memslot.yaml"), null, 200);
        var rom = output.Split('\n').Single(l => l.Contains(" rom ", StringComparison.Ordinal));
        Assert.Contains("read ok, write mmio-exit", rom, StringComparison.Ordinal);
        Assert.Contains("Normal-WB (MAIR 0xFF)", rom, StringComparison.Ordinal);
    }

    [Fact]
    public void Design_all_gives_one_scorecard_row_per_design_and_variant_in_json()
    {
        var (exit, output, _) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "ram-both-hosts.yaml"), "--design", "all", "--format", "json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.GetProperty("scorecard").EnumerateArray().ToList();
        // Five designs; two of them have two variants each; this scenario adds none.
        Assert.Equal(7, rows.Count);
        Assert.All(rows, r => Assert.True(r.GetProperty("noMismatchedAlias").GetBoolean()));
        Assert.Equal(rows.Count, doc.RootElement.GetProperty("runs").GetArrayLength());
    }

    [Fact]
    public void Markdown_has_the_scorecard_table()
    {
        var (exit, output, _) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "grace-blackwell.yaml"), "--design", "linux-6.9", "--format", "markdown");
        Assert.Equal(0, exit);
        Assert.Contains("## Scorecard", output, StringComparison.Ordinal);
        Assert.Contains("| linux-6.9 |", output, StringComparison.Ordinal);
    }

    [Fact]
    public void An_invalid_file_exits_2_names_file_line_column_and_field_and_runs_nothing()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-bad-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "name: bad\nhosts:\n  h: { cpu: neoverse-v2, design: linux-6.17 }\nvms:\n  vm: { host: nowhere, memory: [ { name: ram, gpa: 0, size: 2MiB } ] }\nsteps:\n  - start: vm\n");
        try
        {
            var (exit, output, err) = CliRunner.Run("run", path);
            Assert.Equal(2, exit);
            Assert.Contains($"{path}:5:15: vms.vm.host: unknown host 'nowhere'", err, StringComparison.Ordinal);
            Assert.Contains("nothing was run", err, StringComparison.Ordinal);
            Assert.Equal("", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_failed_expectation_exits_1_and_names_its_line()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-expect-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "name: e\nhosts:\n  h: { cpu: neoverse-n1, design: linux-6.17 }\nvms:\n  vm: { host: h, memory: [ { name: ram, gpa: 0, size: 2MiB } ] }\nsteps:\n  - { id: a, start: vm }\n  - { id: r, access: { vm: vm, region: ram, mair: 0xFF, type: read } }\n  - expect: { step: r, stage2: device-ngnre }\n");
        try
        {
            var (exit, output, _) = CliRunner.Run("run", path);
            Assert.Equal(1, exit);
            Assert.Contains(":9:", output, StringComparison.Ordinal);
            Assert.Contains("expected device-ngnre, got normal", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Unknown_design_and_format_exit_2()
    {
        var file = CliRunner.RepoFile("scenarios", "vfio-bar-wc.yaml");
        Assert.Equal(2, CliRunner.Run("run", file, "--design", "linux-7.0").Exit);
        Assert.Equal(2, CliRunner.Run("run", file, "--format", "yaml").Exit);
        var (exit, _, err) = CliRunner.Run("run", "/nonexistent/x.yaml");
        Assert.Equal(2, exit);
        Assert.Contains("cannot read the file", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_prints_the_decision_chain_of_each_access()
    {
        var (exit, output, _) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "mixedmap-gap.yaml"), "--explain");
        Assert.Equal(0, exit);
        Assert.Contains("altra-usemem: gpu0.usemem on altra", output, StringComparison.Ordinal);
        Assert.Contains("(rule 8)", output, StringComparison.Ordinal);
    }
}
