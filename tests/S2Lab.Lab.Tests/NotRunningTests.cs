using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Steps on a VM that is not running name the host it was last on and say why it is not running.</summary>
public class NotRunningTests
{
    private static RunResult Demo617() =>
        ScenarioRunner.RunOnce(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), new DesignRef("linux-6.17"), RunVariant.Default);

    [Fact]
    public void Migrating_a_VM_that_failed_to_start_names_that_host_and_the_failed_call()
    {
        var run = Demo617();
        var m = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "altra-to-grace");
        Assert.Equal(MigrationVerdict.Refused, m.Outcome);
        Assert.Equal("altra", m.From); // the host it was last started on (rule 5: usemem EINVAL there)
        Assert.Contains("failed to start on altra", m.Reason, StringComparison.Ordinal);
        Assert.Contains("gpu0.usemem", m.Reason, StringComparison.Ordinal);
        Assert.Contains("EINVAL", m.Reason, StringComparison.Ordinal);
        // The accesses of that lifetime: host altra, the same reason, the region's real kind.
        var access = run.Steps.OfType<AccessResult>().Where(a => a.Index > run.Steps.OfType<StartResult>().Last().Index).ToList();
        Assert.NotEmpty(access);
        Assert.All(access, a =>
        {
            Assert.Equal("altra", a.Region.Host);
            Assert.NotEqual("-", a.Region.RegionKind);
            Assert.All(a.Region.Accesses, x => Assert.Contains("failed to start on altra", x.Detail, StringComparison.Ordinal));
        });
    }

    [Fact]
    public void A_guest_that_died_says_how_when_a_later_step_needs_it()
    {
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), new DesignRef("linux-6.17"),
            RunPlan.For(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "linux-6.17").Single(p => p.Variant.Label == "usemem=mixedmap").Variant);
        var m = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "altra-to-grace");
        Assert.Equal(MigrationVerdict.Refused, m.Outcome);
        Assert.Equal("altra", m.From);
        Assert.Contains("EFAULT", m.Reason, StringComparison.Ordinal); // rule 7: the MIXEDMAP fault that killed it
    }

    [Fact]
    public void Never_started_and_stopped_VMs_are_named_by_their_host_with_the_reason()
    {
        var text = """
            name: never
            hosts:
              grace: { cpu: neoverse-v2, design: linux-6.17 }
              altra: { cpu: neoverse-n1, design: linux-6.17 }
            vms:
              vm:
                host: grace
                memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }]
            steps:
              - { id: early, migrate: { vm: vm, to: altra } }
              - { id: touch, access: { vm: vm, region: ram, mair: 0xFF, type: read } }
              - start: { vm: vm, host: altra }
              - stop: vm
              - { id: late, migrate: { vm: vm, to: grace } }
              - { id: again, stop: vm }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "never.yaml"), null, RunVariant.Default);
        var early = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "early");
        Assert.Equal("grace", early.From); // the VM's own host
        Assert.Contains("never started", early.Reason, StringComparison.Ordinal);
        var touch = run.Steps.OfType<AccessResult>().Single();
        Assert.Equal("grace", touch.Region.Host);
        Assert.Equal("anon", touch.Region.RegionKind);
        var late = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "late");
        Assert.Equal("altra", late.From);
        Assert.Contains("stopped on altra", late.Reason, StringComparison.Ordinal);
        Assert.Contains("stopped on altra", run.Steps.OfType<StopResult>().Last().Outcome, StringComparison.Ordinal);
    }

    [Fact]
    public void No_report_of_any_demo_run_uses_a_dash_for_a_host()
    {
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "all");
        var json = JsonReport.Build(report);
        foreach (var node in json.Descendants())
        {
            if (node.Name is "from" or "to" or "host")
                Assert.NotEqual("-", node.Value);
        }
    }
}

internal static class JsonWalk
{
    /// <summary>Every string property of a JSON tree as (name, value).</summary>
    public static IEnumerable<(string Name, string Value)> Descendants(this System.Text.Json.Nodes.JsonNode node)
    {
        switch (node)
        {
            case System.Text.Json.Nodes.JsonObject o:
                foreach (var (k, v) in o)
                {
                    if (v is System.Text.Json.Nodes.JsonValue jv && jv.TryGetValue<string>(out var sv))
                        yield return (k, sv);
                    else if (v is not null)
                        foreach (var d in v.Descendants())
                            yield return d;
                }

                break;
            case System.Text.Json.Nodes.JsonArray a:
                foreach (var v in a.OfType<System.Text.Json.Nodes.JsonNode>())
                    foreach (var d in v.Descendants())
                        yield return d;
                break;
        }
    }
}
