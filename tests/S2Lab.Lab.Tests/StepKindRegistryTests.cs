using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Adding a step kind is one class and one registry line (docs/architecture.md, "Registries"): a test-only kind,
/// registered in a test-only registry, is read, checked, run and expected with no change to the loader, the
/// runner or the expectation checker.
/// </summary>
public class StepKindRegistryTests
{
    /// <summary>"probe: { vm, region }": asks whether the VM runs and how many memslots its region's VM has, without touching it.</summary>
    private sealed record ProbeStep(int Index, string? Id, SourceMark At, string Vm, string Region) : StepSpec(Index, Id, At)
    {
        public override string Kind => "probe";
    }

    private sealed record ProbeResult(int Index, string Label, bool Running, string Outcome) : StepResult(Index, Label)
    {
        public override string Kind => "probe";

        public override string Summary => Running ? "running" : "not running";
    }

    private sealed class ProbeStepKind : IStepKind
    {
        public string Name => "probe";

        public int Checked { get; private set; }

        public StepSpec? Read(StepReader r)
        {
            var f = r.B.Map(r.Body, r.Path);
            if (f is null)
                return null;
            var rr = r.Scenario.ReadRegionRef(f, r.Path);
            f.Done();
            return rr is { } x ? new ProbeStep(r.Index, r.Id, r.Body.Start, x.Item1.Name, x.Item2.Name) : null;
        }

        public bool Check(StepSpec step, StepReader r)
        {
            Checked++;
            return true;
        }

        public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
        {
            var s = (ProbeStep)step;
            var st = run.Vms[s.Vm];
            var running = st.Vm is not null;
            return new ProbeResult(s.Index, s.Label, running, running ? st.Vm!.Region(s.Region).Outcome.ToString() : "none");
        }

        public IReadOnlyList<ExpectField> Expect { get; } =
        [
            new("running", ["true", "false"], (r, _) => ((ProbeResult)r).Running ? "true" : "false"),
            new("region", null, (r, _) => ((ProbeResult)r).Outcome),
        ];
    }

    private const string Text = """
        name: probe
        hosts:
          grace: { cpu: neoverse-v2, design: linux-6.17 }
        vms:
          vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 2MiB } ] }
        steps:
          - { id: before, probe: { vm: vm, region: ram } }
          - start: vm
          - { id: after, probe: { vm: vm, region: ram } }
          - expect: { step: before, running: false }
          - expect: { step: after, running: true, region: Created }

        """;

    [Fact]
    public void A_test_only_step_kind_loads_runs_and_is_expected_through_the_registry()
    {
        var kind = new ProbeStepKind();
        var kinds = ScenarioKinds.Default.With(kind);
        var scenario = ScenarioLoader.Parse(Text, "probe.yaml", null, kinds);
        Assert.Equal(2, kind.Checked);
        Assert.Equal(["probe", "start", "probe", "expect", "expect"], scenario.Steps.Select(s => s.Kind));

        var run = ScenarioRunner.RunOnce(scenario, null, RunVariant.Default);
        Assert.Equal([false, true], run.Steps.OfType<ProbeResult>().Select(p => p.Running));
        Assert.Equal(3, run.Expectations.Count);
        Assert.All(run.Expectations, e => Assert.True(e.Passed, $"{e.StepLabel}.{e.Field}: expected {e.Expected}, got {e.Actual}"));

        // Reports have no case for it: the generic heading with its summary, and its fields in JSON.
        var report = new Reports.LabReport(scenario.Name, scenario.Description, scenario.File, [run]);
        Assert.Contains("### after: running", Reports.MarkdownReport.Render(report), StringComparison.Ordinal);
        Assert.Contains("\"running\": true", Reports.JsonReport.Render(report), StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_expectation_on_the_new_kind_fails_with_the_actual_value()
    {
        var kinds = ScenarioKinds.Default.With(new ProbeStepKind());
        var text = Text.Edit("running: false", "running: true");
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "probe.yaml", null, kinds), null, RunVariant.Default);
        var failed = Assert.Single(run.Expectations, e => !e.Passed);
        Assert.Equal(("before", "running", "false"), (failed.StepLabel, failed.Field, failed.Actual));
    }

    [Fact]
    public void The_new_kinds_fields_are_validated_with_file_line_and_field()
    {
        var kinds = ScenarioKinds.Default.With(new ProbeStepKind());
        var text = Text.Edit("running: false", "running: maybe")
            .Edit("region: Created", "stage2: normal");
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, "probe.yaml", null, kinds));
        Assert.Collection(e.Errors,
            x => Assert.Equal(("probe.yaml", 10, "steps[3].expect.running"), (x.File, x.At.Line, x.Field)),
            x =>
            {
                Assert.Equal(("steps[4].expect.stage2", 11), (x.Field, x.At.Line));
                Assert.Contains("cannot be checked on a probe step; fields for probe: running, region", x.Message, StringComparison.Ordinal);
            });
    }

    [Fact]
    public void Without_the_kind_registered_the_same_file_is_rejected_naming_the_known_actions()
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Text, "probe.yaml"));
        var first = e.Errors[0];
        Assert.Equal(("steps[0]", 7), (first.Field, first.At.Line));
        Assert.Contains("a step needs one action: start, stop, access, mprotect, munmap, remap, set-flags, migrate, expect", first.Message, StringComparison.Ordinal);
    }
}
