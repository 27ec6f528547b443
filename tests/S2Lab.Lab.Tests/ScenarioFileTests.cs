using System.Text.Json;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using YamlDotNet.Serialization;

namespace S2Lab.Lab.Tests;

/// <summary>Every file in scenarios/ runs under every design, and its expect steps hold.</summary>
public class ScenarioFileTests
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Repo.Scenarios).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order())
            data.Add(Path.GetFileName(f));
        return data;
    }

    [Fact]
    public void There_are_the_demo_and_at_least_six_more_scenarios()
    {
        var files = Directory.GetFiles(Repo.Scenarios, "*.yaml").Select(Path.GetFileName).ToList();
        Assert.Contains("demo.yaml", files);
        Assert.True(files.Count >= 7, string.Join(", ", files));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Scenario_expectations_hold_under_every_design(string file)
    {
        var scenario = ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, file));
        // A file whose expectations describe its hosts as written scopes them with designs/variants (see
        // module-param-altra.json); under --design all nothing may fail, so `s2lab run FILE --design all` exits 0.
        var report = ScenarioRunner.Run(scenario, "all");
        var failed = report.Checks.Where(c => !c.Check.Passed)
            .Select(c => $"{c.Run.Name}: line {c.Check.At.Line}: {c.Check.StepLabel} {c.Check.Field}: expected {c.Check.Expected}, got {c.Check.Actual}")
            .ToList();
        Assert.True(failed.Count == 0, string.Join(Environment.NewLine, failed));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Scenario_runs_with_the_designs_the_file_names(string file)
    {
        var scenario = ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, file));
        var report = ScenarioRunner.Run(scenario, null);
        Assert.Single(report.Runs);
        Assert.NotEmpty(report.Checks); // every scenario file is a test of the files as written
        Assert.True(report.ExpectationsPassed, string.Join("; ", report.Checks.Where(c => !c.Check.Passed).Select(c => $"{c.Check.StepLabel} {c.Check.Field}: {c.Check.Actual}")));
    }

    [Fact]
    public void The_embedded_demo_is_scenarios_demo_yaml()
    {
        Assert.Equal(File.ReadAllText(Path.Combine(Repo.Scenarios, "demo.yaml")), DemoScenario.Text());
    }

    /// <summary>The same scenario written as JSON loads to the same model and gives the same scorecard.</summary>
    [Theory]
    [InlineData("demo.yaml")]
    [InlineData("migration-dirty-ram.yaml")]
    [InlineData("vfio-bar-wc.yaml")]
    public void The_same_schema_is_accepted_as_JSON(string file)
    {
        var yamlText = File.ReadAllText(Path.Combine(Repo.Scenarios, file));
        var tree = new DeserializerBuilder().Build().Deserialize<object>(yamlText);
        var json = JsonSerializer.Serialize(tree, new JsonSerializerOptions { WriteIndented = true });
        var fromYaml = ScenarioLoader.Parse(yamlText, file);
        var fromJson = ScenarioLoader.Parse(json, Path.ChangeExtension(file, ".json"));
        Assert.Equal(fromYaml.Steps.Count, fromJson.Steps.Count);
        Assert.Equal(fromYaml.Hosts.Select(h => (h.Name, h.Cpu.Name, h.Design.Name)), fromJson.Hosts.Select(h => (h.Name, h.Cpu.Name, h.Design.Name)));
        var a = ScenarioRunner.Run(fromYaml, "linux-6.17");
        var b = ScenarioRunner.Run(fromJson, "linux-6.17");
        Assert.Equal(a.Scorecard.Select(r => (r.Design, r.Variant, r.EarlyDiscovery, r.NoFaultTimeDeath, r.CacheableWherePossible, r.NoMismatchedAlias, r.NoImpossibleMaintenance, r.ClearMigrationSemantics)),
            b.Scorecard.Select(r => (r.Design, r.Variant, r.EarlyDiscovery, r.NoFaultTimeDeath, r.CacheableWherePossible, r.NoMismatchedAlias, r.NoImpossibleMaintenance, r.ClearMigrationSemantics)));
        Assert.True(b.ExpectationsPassed);
    }
}
