using System.Text.Json.Nodes;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>Outcomes are enums; the words scenario files, expect steps and JSON use for them stay the documented ones.</summary>
public class OutcomeWordsTests
{
    [Fact]
    public void Expect_steps_accept_the_documented_words()
    {
        Assert.Equal(["ok", "refused", "failed"], ExpectFields.StartOutcomes);
        Assert.Equal(["refused", "setup-failed", "failed-after-switchover", "succeeded-same-types", "succeeded-changed-types"], ExpectFields.MigrationOutcomes);
        Assert.Equal(["ok", "efault", "instruction-abort", "data-abort", "mmio-exit", "not-running", "run-failed"], ExpectFields.AccessOutcomes);
        Assert.Equal(["normal", "normal-nc", "device-ngnre", "none"], ExpectFields.Stage2Types);
        Assert.Equal(["earlyDiscovery", "noFaultTimeDeath", "cacheableWherePossible", "noMismatchedAlias", "noImpossibleMaintenance", "clearMigrationSemantics"],
            ExpectFields.ScorecardProperties);
    }

    [Fact]
    public void A_failed_memslot_is_named_by_its_errno_and_other_setup_outcomes_by_their_word()
    {
        RegionSetupResult R(RegionOutcome o, Errno e) => new("r", "anon", 0, 0x1000, null, KvmMemFlags.None, o, e, "");
        Assert.Equal("EINVAL", R(RegionOutcome.Failed, Errno.EINVAL).Text);
        Assert.Equal("EEXIST", R(RegionOutcome.Failed, Errno.EEXIST).Text);
        Assert.Equal("ok", R(RegionOutcome.Created, Errno.None).Text);
        Assert.Equal("refused", R(RegionOutcome.Refused, Errno.None).Text);
        Assert.Equal("skipped", R(RegionOutcome.Skipped, Errno.None).Text);
    }

    [Fact]
    public void Json_writes_outcome_words_and_null_for_a_region_without_a_mapping()
    {
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "linux-6.17");
        var json = JsonReport.Build(report);
        var steps = json["runs"]!.AsArray().SelectMany(r => r!["steps"]!.AsArray()).Select(s => s!.AsObject()).ToList();

        // A step on a VM that is not running has no mapping: both fields are present and null.
        var notRunning = steps.Where(s => (string?)s["kind"] == "access"
            && s["region"]!["accesses"]!.AsArray().All(a => (string?)a!["outcome"] == "not-running")).ToList();
        Assert.NotEmpty(notRunning);
        foreach (var s in notRunning)
        {
            var region = s["region"]!.AsObject();
            Assert.True(region.ContainsKey("stage2MemAttr") && region["stage2MemAttr"] is null);
            Assert.True(region.ContainsKey("effective") && region["effective"] is null);
        }

        // The migration to altra fails at the usemem memslot: the region's outcome is the errno name.
        var migrate = steps.First(s => (string?)s["kind"] == "migrate" && (string?)s["outcome"] == "setup-failed");
        var usemem = migrate["destinationRegions"]!.AsArray().Single(r => (string?)r!["region"] == "gpu0.usemem")!;
        Assert.Equal("EINVAL", (string?)usemem["outcome"]);
        Assert.All(steps.Where(s => (string?)s["kind"] == "start"), s => Assert.Contains((string?)s["outcome"], ExpectFields.StartOutcomes));
    }

    [Fact]
    public void Json_writes_errnos_by_the_kernels_names()
    {
        // linux-6.17: altra refuses usemem's memslot with EINVAL (rule 6).
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "linux-6.17");
        var text = JsonReport.Render(report);
        var errnos = System.Text.RegularExpressions.Regex.Matches(text, "\"errno\":\\s*\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Contains("EINVAL", errnos);
        Assert.Contains("ok", errnos);
        Assert.All(errnos, e => Assert.True(e == "ok" || Enum.TryParse<Errno>(e, ignoreCase: false, out _), $"'{e}' is not a kernel errno name"));
    }
}
