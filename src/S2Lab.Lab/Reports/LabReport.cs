using S2Lab.Lab.Runner;
using S2Lab.Lab.Scorecard;

namespace S2Lab.Lab.Reports;

/// <summary>Everything one invocation produced: the runs of a scenario (one per design and variant).</summary>
public sealed record LabReport(string Scenario, string Description, string File, IReadOnlyList<RunResult> Runs)
{
    /// <summary>One scorecard row per run, in run order.</summary>
    public IReadOnlyList<ScorecardRow> Scorecard => Runs.Select(r => r.Scorecard).ToList();

    /// <summary>Every expectation that was checked, with its run.</summary>
    public IEnumerable<(RunResult Run, ExpectationResult Check)> Checks =>
        Runs.SelectMany(r => r.Expectations.Select(e => (r, e)));

    public bool ExpectationsPassed => Runs.All(r => r.ExpectationsPassed);
}
