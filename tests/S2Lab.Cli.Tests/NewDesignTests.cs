using System.Text.Json;
using System.Text.RegularExpressions;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Cli.Tests;

/// <summary>
/// A new design declares its name, order, argument and uAPI once, in its <see cref="KvmDesignAttribute"/> (issue 11,
/// docs/architecture.md "One type per concept"). Two test-only design classes, added to the registry for the test's
/// flow only (<see cref="KvmDesigns.Including"/>), appear in every place that lists designs: <c>--design</c>'s help and
/// errors, <c>--design all</c> and its scorecard, a scenario's <c>design:</c> and <c>params:</c>, and the docs check.
/// </summary>
public partial class NewDesignTests
{
    /// <summary>A design with a two-valued argument (neither is "off", so the default is the first).</summary>
    [KvmDesign("test-knob", 90, Arguments = new[] { "fast", "slow" })]
    public sealed class TestKnobDesign : Linux617Design
    {
        public TestKnobDesign()
            : this(null)
        {
        }

        public TestKnobDesign(string? argument) =>
            Argument = argument is null or "fast" or "slow" ? argument ?? "fast" : throw new ArgumentException($"the knob is 'fast' or 'slow', not '{argument}'");

        public string Argument { get; }

        public override string Name => $"test-knob={Argument}";

        public override string Summary => "test only: as linux-6.17, with a knob";
    }

    /// <summary>A design whose uAPI declares the cacheable-PFNMAP memslot flag (no host accepts it: it is never offered).</summary>
    [KvmDesign("test-flag", 91, ExtraMemslotFlags = KvmMemFlags.ENABLE_CACHEABLE_PFNMAP)]
    public sealed class TestFlagDesign : Linux617Design
    {
        public override string Name => "test-flag";

        public override string Summary => "test only: as linux-6.17, with a memslot flag in its uAPI";
    }

    private static readonly string[] Registered = ["linux-6.8", "linux-6.9", "linux-6.17", "proposal-memslot-flag", "proposal-module-param"];

    [Fact]
    public void A_design_class_is_all_a_new_design_needs()
    {
        using (KvmDesigns.Including(typeof(TestKnobDesign), typeof(TestFlagDesign)))
        {
            Assert.Equal([.. Registered, "test-knob", "test-flag"], DesignCatalog.Designs);

            // --design: the help lists it, an unknown name's error lists it, and its variants parse.
            var (_, help, _) = CliRunner.Run("run", "--help");
            Assert.Contains("proposal-module-param, test-knob, test-flag)", help, StringComparison.Ordinal);
            var (exit, _, err) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "ram-both-hosts.yaml"), "--design", "nosuch");
            Assert.Equal(2, exit);
            Assert.Contains("known designs: all, linux-6.8, linux-6.9, linux-6.17, proposal-memslot-flag, proposal-module-param, test-knob, test-flag", err, StringComparison.Ordinal);
            Assert.Equal(new DesignRef("test-knob", "slow"), DesignCatalog.ParseChoice("test-knob:param=slow", [], allowAll: false, out _)!.Design);
            Assert.Equal(new DesignRef("test-knob", "fast"), DesignCatalog.ParseChoice("test-knob", [], allowAll: false, out _)!.Design);

            // --design all: one scorecard row per declared argument value, and per VMM choice of a declared flag.
            var (_, json, runErr) = CliRunner.Run("run", CliRunner.RepoFile("scenarios", "ram-both-hosts.yaml"), "--design", "all", "--format", "json");
            Assert.True(json.Length > 0, runErr);
            var rows = JsonDocument.Parse(json).RootElement.GetProperty("scorecard").EnumerateArray()
                .Select(r => (r.GetProperty("design").GetString(), r.GetProperty("variant").GetString())).ToList();
            Assert.Equal([("test-knob", "param=fast"), ("test-knob", "param=slow"), ("test-flag", "flag=prefer-cacheable"), ("test-flag", "flag=prefer-migratable")],
                rows.Where(r => r.Item1!.StartsWith("test-", StringComparison.Ordinal)));
            var knobRun = JsonDocument.Parse(json).RootElement.GetProperty("runs").EnumerateArray()
                .First(r => r.GetProperty("variant").GetString() == "param=slow");
            Assert.All(knobRun.GetProperty("hosts").EnumerateArray(), h => Assert.Equal("test-knob=slow", h.GetProperty("design").GetString()));

            // A scenario's design: and params: read it, with the declared values and default.
            var scenario = ScenarioLoader.Parse(Scenario("design: test-knob, params: { param: slow }", "design: test-flag"), "knob.yaml");
            Assert.Equal([new DesignRef("test-knob", "slow"), new DesignRef("test-flag")], scenario.Hosts.Select(h => h.Design));
            Assert.Equal(new DesignRef("test-knob", "fast"), ScenarioLoader.Parse(Scenario("design: test-knob", "design: test-knob"), "knob.yaml").Hosts[0].Design);
            var bad = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Scenario("design: test-knob, params: { param: medium }", "design: linux-6.17"), "knob.yaml"));
            Assert.Equal("'medium' is not one of: fast, slow", Assert.Single(bad.Errors).Message);

            // The docs check asks for it: docs/designs.md and docs/scenario-schema.md do not document it.
            Assert.Equal(["test-knob", "test-flag"], Undocumented());
        }

        Assert.Equal(Registered, DesignCatalog.Designs);
    }

    private static string Scenario(string grace, string altra) => $$"""
        name: knob
        hosts:
          grace: { cpu: neoverse-v2, {{grace}} }
          altra: { cpu: neoverse-n1, {{altra}} }
        vms:
          vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 2MiB } ] }
        steps:
          - start: vm
        """;

    /// <summary>docs/designs.md's table (each name linking to its class) and docs/scenario-schema.md's list name every registered design, in the registry's order.</summary>
    [Fact]
    public void Every_registered_design_is_documented_in_order()
    {
        Assert.Empty(Undocumented());
        Assert.Equal(DesignCatalog.Designs, DesignsTable().Select(r => r.Name));
        Assert.Equal(DesignCatalog.Designs, SchemaList());
        foreach (var (name, link) in DesignsTable())
            Assert.Equal($"../src/S2Lab.Kernel/Kvm/Designs/{KvmDesigns.Find(name)!.DesignType.Name}.cs", link);
    }

    /// <summary>
    /// Source outside src/S2Lab.Kernel/Kvm/Designs names a design only to pick one, never to list them: a list would
    /// miss a new class. Each file allowed here says why it names one.
    /// </summary>
    [Fact]
    public void No_source_outside_the_designs_lists_designs_by_name()
    {
        var allowed = new Dictionary<string, string>
        {
            ["src/S2Lab.Lab/Replay/ModelBackend.cs"] = "the replay's default design",
            ["src/S2Lab.Lab/Replay/Arm64Oracle.cs"] = "the design that models a recorded Linux release",
            ["src/S2Lab.Cli/Commands/RunCommand.cs"] = "--design's help: examples of DESIGN:VARIANT (ConsistencyTests parses them)",
            ["src/S2Lab.Cli/Bench/FaultRig.cs"] = "the benchmarked design",
            ["src/S2Lab.Cli/Bench/KernelBenches.cs"] = "the benchmarked design",
            ["src/S2Lab.Cli/Bench/MigrationRig.cs"] = "the benchmarked design",
        };
        var root = Path.GetDirectoryName(CliRunner.RepoFile("S2Lab.slnx"))!;
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file).Replace('\\', '/'); // not a fixture edit
            if (rel.StartsWith("src/S2Lab.Kernel/Kvm/Designs/", StringComparison.Ordinal) || rel.Contains("/obj/", StringComparison.Ordinal) || rel.Contains("/bin/", StringComparison.Ordinal))
                continue;
            var text = File.ReadAllText(file);
            if (DesignCatalog.Designs.Any(d => text.Contains($"\"{d}", StringComparison.Ordinal)) && !allowed.ContainsKey(rel))
                found.Add(rel);
        }

        Assert.Empty(found);
    }

    [GeneratedRegex(@"^\| \[`([^`]+)`\]\(([^)]+)\) \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();

    private static string Doc(string name) => File.ReadAllText(CliRunner.RepoFile("docs", name));

    /// <summary>The design rows of docs/designs.md: name and the link to its class.</summary>
    private static List<(string Name, string Link)> DesignsTable() =>
        TableRow().Matches(Doc("designs.md")).Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToList();

    /// <summary>The designs docs/scenario-schema.md's "Designs" section lists (its first paragraph).</summary>
    private static List<string> SchemaList()
    {
        var doc = Doc("scenario-schema.md");
        var start = doc.IndexOf("\n## Designs\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/scenario-schema.md has no Designs section");
        var paragraph = doc[(start + "\n## Designs\n".Length)..].TrimStart('\n');
        paragraph = paragraph[..paragraph.IndexOf("\n\n", StringComparison.Ordinal)];
        return Code().Matches(paragraph).Select(m => m.Groups[1].Value).ToList();
    }

    /// <summary>Registered designs that either document leaves out.</summary>
    private static List<string> Undocumented()
    {
        var table = DesignsTable().Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var list = SchemaList().ToHashSet(StringComparer.Ordinal);
        return DesignCatalog.Designs.Where(d => !table.Contains(d) || !list.Contains(d)).ToList();
    }
}
