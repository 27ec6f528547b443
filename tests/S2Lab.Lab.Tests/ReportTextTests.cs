using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>Report text lives on the records, once: both renderers print these.</summary>
public class ReportTextTests
{
    private static MigrateResult M(MigrationVerdict o, string reason = "", string call = "", Errno e = Errno.None, IReadOnlyList<PrecopyRoundReport>? rounds = null) =>
        new(0, "m", "vm", "a", "b", "p", o, reason, call, e, [], rounds ?? [], [], [], [], null, "");

    [Fact]
    public void A_needed_CMO_that_is_possible_is_done_by_KVM()
    {
        Assert.Equal("none", CmoRecord.NoneNeeded.Text);
        Assert.Equal("DcacheCleanInvalPoc: done", new CmoRecord(["DcacheCleanInvalPoc"], true, "").Text);
        Assert.Equal("DcacheCleanInvalPoc: impossible", new CmoRecord(["DcacheCleanInvalPoc"], false, "no kernel VA").Text);
        // The expect field keeps its own words.
        Assert.Equal("possible", new CmoRecord(["DcacheCleanInvalPoc"], true, "").Summary);
    }

    [Fact]
    public void Precopy_rounds_read_in_order_with_the_stop_and_copy_last()
    {
        var m = M(MigrationVerdict.SucceededSameTypes, rounds: [new(1, 512, 65024, 16), new(2, 16, 0, 0), new(0, 3, 1, 0)]);
        Assert.Equal("r1: 512 sent, 65024 zero, 16 dirtied; r2: 16 sent, 0 dirtied; stop-and-copy: 3 sent, 1 zero", m.PrecopyText);
    }

    [Fact]
    public void The_failed_call_is_shown_whenever_it_is_set()
    {
        var failed = M(MigrationVerdict.SetupFailed, "the destination VMM's setup failed; the guest stays on the source", "KVM_SET_USER_MEMORY_REGION2 slot 2 (usemem)", Errno.EINVAL);
        Assert.Equal("KVM_SET_USER_MEMORY_REGION2 slot 2 (usemem): EINVAL", failed.FailedCallText);
        Assert.EndsWith("[KVM_SET_USER_MEMORY_REGION2 slot 2 (usemem): EINVAL]", failed.Summary, StringComparison.Ordinal);
        Assert.Equal("", M(MigrationVerdict.Refused, "no").FailedCallText);
        Assert.DoesNotContain("[", M(MigrationVerdict.Refused, "no").Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void A_destination_memslot_failure_is_named_once_as_the_failed_call()
    {
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), new DesignRef("linux-6.17"), RunVariant.Default);
        var m = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "grace-to-altra");
        Assert.StartsWith("KVM_SET_USER_MEMORY_REGION2", m.FailedCall, StringComparison.Ordinal);
        Assert.DoesNotContain("KVM_SET_USER_MEMORY_REGION", m.Reason, StringComparison.Ordinal);
        Assert.Equal("linux-6.17", run.Name);
        Assert.Equal(run.Scorecard.Name, run.Name);
        Assert.Equal("d [v=1]", new Scorecard.ScorecardRow("d", "v=1", run.Scorecard.Evidence).Name);
    }
}
