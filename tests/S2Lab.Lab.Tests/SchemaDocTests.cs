using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>docs/scenario-schema.md's examples load as written (the doc once showed migrate.dirty as a mapping).</summary>
public partial class SchemaDocTests
{
    private const string Prefix = """
        name: doc
        hosts:
          grace: { cpu: neoverse-v2, design: linux-6.17 }
          altra: { cpu: neoverse-n1, design: linux-6.17 }
        vms:
          vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 64MiB } ] }
        steps:
          - start: vm

        """;

    /// <summary>The YAML block of the doc that documents migrate.dirty.</summary>
    private static string DirtyExample()
    {
        var doc = File.ReadAllText(Path.Combine(Repo.Root, "docs", "scenario-schema.md"));
        var blocks = doc.Split("```yaml").Skip(1).Select(b => b[..b.IndexOf("```", StringComparison.Ordinal)]);
        return blocks.Single(b => b.Contains("dirty:", StringComparison.Ordinal));
    }

    [Fact]
    public void The_documented_dirty_list_loads_with_its_fields()
    {
        // The example is a step at column 0; the scenario's steps are indented by two.
        var step = string.Join('\n', DirtyExample().Trim('\n').Split('\n').Select(l => "  " + l));
        var s = ScenarioLoader.Parse(Prefix + step + "\n", "doc.yaml");
        var migrate = Assert.IsType<MigrateStep>(s.Steps[^1]);
        var d = Assert.Single(migrate.Dirty);
        Assert.Equal(("ram", 0x1000UL, 16, 2), (d.Region, d.Offset, d.Pages, d.Rounds));
    }

    [Fact]
    public void Dirty_as_a_mapping_is_a_located_error_asking_for_a_list()
    {
        var text = Prefix + "  - migrate: { vm: vm, to: altra, dirty: { region: ram, pages: 16 } }\n";
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, "doc.yaml"));
        var err = Assert.Single(e.Errors);
        Assert.Equal("steps[1].migrate.dirty", err.Field);
        Assert.Equal(9, err.At.Line);
        Assert.Contains("list", err.Message, StringComparison.Ordinal);
    }
}
