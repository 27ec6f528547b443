using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Each start and migration is a phase reports can tell apart: the VM's run number and the step id.</summary>
public class PhaseTests
{
    private static RunResult Demo(string design) =>
        ScenarioRunner.RunOnce(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), DesignCatalog.DefaultRef(design), RunVariant.Default);

    [Fact]
    public void Every_start_and_migration_of_the_demo_has_its_own_phase()
    {
        var run = Demo("linux-6.9");
        var phases = run.Steps.Where(s => s is StartResult or MigrateResult).Select(s => s.Phase).ToList();
        Assert.Equal(8, phases.Count); // 5 starts, 3 migrations
        Assert.Equal(phases.Count, phases.Distinct().Count());
        // Runs count the VM's starts; a migration belongs to the run it moves.
        Assert.Equal([1, 2, 3, 3, 4, 4, 5, 5], run.Steps.Where(s => s is StartResult or MigrateResult).Select(s => s.Run));
        Assert.Equal("run 1: start on grace [grace-start]", phases[0]);
        Assert.Equal("run 3: start on grace", phases[2]); // no id in the file
        Assert.Equal("run 3: grace -> altra (trust-kernel) [grace-to-altra]", phases[3]);
    }

    [Fact]
    public void Accesses_and_stops_carry_the_phase_they_happen_in()
    {
        var run = Demo("linux-6.9");
        string phase = "";
        foreach (var s in run.Steps)
        {
            if (s is StartResult or MigrateResult)
                phase = s.Phase;
            else
                Assert.Equal(phase, s.Phase);
        }

        Assert.Equal("run 2: start on altra [altra-start]", run.Steps.Single(s => s.Label == "altra-usemem").Phase);
    }

    [Fact]
    public void Json_steps_carry_run_and_phase()
    {
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "linux-6.17");
        var steps = JsonReport.Build(report)["runs"]![0]!["steps"]!.AsArray();
        var start = steps.Single(s => (string?)s!["label"] == "altra-start")!;
        Assert.Equal(2, (int)start["run"]!);
        Assert.Equal("run 2: start on altra [altra-start]", (string?)start["phase"]);
        var mig = steps.Single(s => (string?)s!["label"] == "altra-to-grace")!;
        Assert.Equal("run 5: altra -> grace (trust-kernel) [altra-to-grace]", (string?)mig["phase"]);
    }

    [Fact]
    public void With_several_VMs_the_phase_names_the_VM()
    {
        var text = """
            name: two
            hosts:
              grace: { cpu: neoverse-v2, design: linux-6.17 }
            vms:
              a: { host: grace, memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }] }
              b: { host: grace, memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }] }
            steps:
              - start: { vm: a, host: grace }
              - start: { vm: b, host: grace }
              - start: { vm: a, host: grace }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "two.yaml"), null, RunVariant.Default);
        Assert.Equal(["a run 1: start on grace", "b run 1: start on grace", "a run 2: start on grace"], run.Steps.Select(s => s.Phase));
    }

    [Fact]
    public void A_type_change_to_no_mapping_says_what_failed_not_a_dash()
    {
        var scenario = ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml");
        var variant = RunPlan.For(scenario, "linux-6.17").Single(p => p.Variant.Label == "usemem=mixedmap").Variant;
        var run = ScenarioRunner.RunOnce(scenario, new DesignRef("linux-6.17"), variant);
        var change = run.Steps.OfType<MigrateResult>().Single(m => m.Label == "grace-to-altra").Changes.Single(c => c.Region == "gpu0.usemem");
        Assert.Equal("normal / Normal-WB", change.Before);
        Assert.Equal("no mapping: read efault", change.After); // rule 7: the MIXEDMAP fault fails on altra
    }
}
