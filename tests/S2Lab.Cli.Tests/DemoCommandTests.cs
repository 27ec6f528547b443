using System.Text.Json;

namespace S2Lab.Cli.Tests;

/// <summary><c>s2lab demo</c>: the embedded scenario under every design, the scorecard rows in JSON.</summary>
public class DemoCommandTests
{
    private static readonly Lazy<JsonDocument> Json = new(() =>
    {
        var (exit, output, err) = CliRunner.Run("demo", "--format", "json");
        Assert.True(exit == 0, err);
        return JsonDocument.Parse(output);
    });

    private static JsonElement Row(string design, string variant) =>
        Json.Value.RootElement.GetProperty("scorecard").EnumerateArray()
            .Single(r => r.GetProperty("design").GetString() == design && r.GetProperty("variant").GetString() == variant);

    [Fact]
    public void Json_scorecard_rows_have_exactly_the_documented_fields()
    {
        var rows = Json.Value.RootElement.GetProperty("scorecard").EnumerateArray().ToList();
        Assert.Equal(8, rows.Count);
        string[] fields = ["design", "variant", "earlyDiscovery", "noFaultTimeDeath", "cacheableWherePossible", "noMismatchedAlias", "noImpossibleMaintenance", "clearMigrationSemantics"];
        Assert.All(rows, r => Assert.Equal(fields, r.EnumerateObject().Select(p => p.Name)));
        Assert.Equal(["", "", "", "usemem=mixedmap", "flag=prefer-cacheable", "flag=prefer-migratable", "param=on", "param=off"],
            rows.Select(r => r.GetProperty("variant").GetString()));
    }

    [Fact]
    public void Json_carries_the_per_step_results_beside_the_scorecard()
    {
        var run = Json.Value.RootElement.GetProperty("runs").EnumerateArray().First(r => r.GetProperty("design").GetString() == "linux-6.17");
        var steps = run.GetProperty("steps").EnumerateArray().ToList();
        var start = steps.First(s => s.GetProperty("kind").GetString() == "start");
        Assert.Equal("ok", start.GetProperty("outcome").GetString());
        var access = steps.First(s => s.GetProperty("label").GetString() == "grace-usemem");
        Assert.Equal("normal", access.GetProperty("region").GetProperty("stage2").GetString());
        Assert.Equal("Normal-WB", access.GetProperty("region").GetProperty("effective").GetString());
        Assert.True(Json.Value.RootElement.GetProperty("expectationsPassed").GetBoolean());
    }

    [Fact]
    public void The_designs_md_findings_are_in_the_rows()
    {
        Assert.False(Row("linux-6.9", "").GetProperty("cacheableWherePossible").GetBoolean());
        Assert.False(Row("linux-6.9", "").GetProperty("noMismatchedAlias").GetBoolean());
        Assert.True(Row("linux-6.17", "").GetProperty("cacheableWherePossible").GetBoolean());
        Assert.True(Row("linux-6.17", "").GetProperty("noMismatchedAlias").GetBoolean());
        Assert.True(Row("linux-6.17", "").GetProperty("noImpossibleMaintenance").GetBoolean());
        Assert.False(Row("linux-6.17", "usemem=mixedmap").GetProperty("noFaultTimeDeath").GetBoolean());
        Assert.False(Row("proposal-module-param", "param=on").GetProperty("noImpossibleMaintenance").GetBoolean());
        Assert.False(Row("proposal-memslot-flag", "flag=prefer-migratable").GetProperty("noMismatchedAlias").GetBoolean());
    }

    [Fact]
    public void Table_output_shows_each_design_and_the_scorecard()
    {
        var (exit, output, _) = CliRunner.Run("demo");
        Assert.Equal(0, exit);
        foreach (var d in new[] { "linux-6.8", "linux-6.9", "linux-6.17", "proposal-memslot-flag", "proposal-module-param" })
            Assert.Contains(d, output, StringComparison.Ordinal);
        Assert.Contains("MT_S2_FWB_NORMAL", output, StringComparison.Ordinal);
        Assert.Contains("Scorecard", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_table_tells_restarts_apart_and_collapses_a_VM_that_did_not_start()
    {
        var section = Section(CliRunner.Table(null, "linux-6.17", 200), "linux-6.17");
        // The three starts on grace are three phases: by run number, and with the step id where the file has one.
        Assert.Contains("run 1: start on grace [grace-start]", section, StringComparison.Ordinal);
        Assert.Contains("run 3: start on grace", section, StringComparison.Ordinal);
        Assert.Contains("run 4: start on grace", section, StringComparison.Ordinal);
        // altra refuses usemem (EINVAL) twice: no "not-running" rows; one line says why the VM did not start, and the
        // memslot column still has every region's outcome.
        Assert.DoesNotContain("not-running", section, StringComparison.Ordinal);
        Assert.Equal(2, Count(section, "VM not started (failed): gpu0.usemem:"));
        var runTwo = section[section.IndexOf("run 2: start on altra", StringComparison.Ordinal)..section.IndexOf("run 3: start on grace", StringComparison.Ordinal)];
        Assert.Contains("EINVAL", runTwo, StringComparison.Ordinal);
        Assert.Single(runTwo.Split('\n'), l => l.Contains("gpu0.usemem", StringComparison.Ordinal) && (l + " ").Contains(" EINVAL ", StringComparison.Ordinal));
        Assert.Contains("ram,", runTwo, StringComparison.Ordinal); // the regions whose memslot was accepted share a row
        // The refused migration names its source and why.
        Assert.Contains("run 5: altra -> grace (trust-kernel) [altra-to-grace]: refused: the VM is not running: it failed to start on altra", section, StringComparison.Ordinal);
    }

    private static string Section(string output, string design)
    {
        var start = output.IndexOf($"-- {design} --", StringComparison.Ordinal);
        Assert.True(start >= 0, output);
        var end = output.IndexOf("\n-- ", start + 4, StringComparison.Ordinal);
        var scorecard = output.IndexOf("Scorecard", start, StringComparison.Ordinal);
        end = end < 0 ? scorecard : Math.Min(end, scorecard);
        return output[start..end];
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal))
            n++;
        return n;
    }

    [Fact]
    public void One_design_only()
    {
        var (exit, output, _) = CliRunner.Run("demo", "--design", "linux-6.9", "--format", "json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Single(doc.RootElement.GetProperty("scorecard").EnumerateArray());
    }

    [Theory]
    [InlineData("proposal-module-param", "param=on")]
    [InlineData("proposal-module-param", "param=off")]
    [InlineData("proposal-memslot-flag", "flag=prefer-migratable")]
    [InlineData("linux-6.17", "usemem=mixedmap")]
    public void One_variant_as_DESIGN_colon_VARIANT_runs_exactly_the_scorecard_row_of_that_name(string design, string variant)
    {
        var (exit, output, _) = CliRunner.Run("demo", "--design", $"{design}:{variant}", "--format", "json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var row = doc.RootElement.GetProperty("scorecard").EnumerateArray().Single();
        Assert.Equal(design, row.GetProperty("design").GetString());
        Assert.Equal(variant, row.GetProperty("variant").GetString());
    }

    [Theory]
    [InlineData("proposal-module-param:maybe", "design 'proposal-module-param' has no variant 'maybe'; its variants: proposal-module-param:param=on, proposal-module-param:param=off")]
    [InlineData("linux-6.9:usemem=mixedmap", "design 'linux-6.9' has no variant 'usemem=mixedmap'; design 'linux-6.9' has no variants")]
    [InlineData("linux-6.17:flag=prefer-cacheable", "its variants: linux-6.17:usemem=mixedmap")]
    [InlineData("proposal-module-param=on", "'proposal-module-param=on': write a variant as DESIGN:VARIANT; its variants: proposal-module-param:param=on")]
    [InlineData("linux-7.0", "unknown design 'linux-7.0'; known designs: all, linux-6.8, linux-6.9, linux-6.17, proposal-memslot-flag, proposal-module-param")]
    public void A_bad_design_or_variant_exits_2_listing_the_valid_ones(string design, string message)
    {
        var (exit, output, err) = CliRunner.Run("demo", "--design", design);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }
}
