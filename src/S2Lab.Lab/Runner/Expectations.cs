using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;
using S2Lab.Lab.Scorecard;

namespace S2Lab.Lab.Runner;

/// <summary>Checks a scenario's expect steps against one run's results.</summary>
public static class Expectations
{
    public static IReadOnlyList<ExpectationResult> Check(Scenario scenario, string design, string variant, IReadOnlyList<StepResult> steps, ScorecardRow row)
    {
        var results = new List<ExpectationResult>();
        var byId = scenario.Steps.Where(s => s.Id is not null).ToDictionary(s => s.Id!, s => s.Index);
        foreach (var e in scenario.Steps.OfType<ExpectStep>())
        {
            if (e.Designs.Count > 0 && !e.Designs.Contains(design))
                continue;
            if (e.Variants.Count > 0 && !e.Variants.Contains(variant))
                continue;
            var target = e.Step is null ? null : steps.FirstOrDefault(s => s.Index == byId[e.Step]);
            foreach (var c in e.Checks)
            {
                if (c.Field.StartsWith("scorecard.", StringComparison.Ordinal))
                {
                    var value = row.Get(c.Field["scorecard.".Length..]) ? "true" : "false";
                    results.Add(new ExpectationResult(e.Index, "scorecard", c.Field, c.Expected, value, string.Equals(c.Expected.Trim(), value, StringComparison.OrdinalIgnoreCase), c.At));
                    continue;
                }

                var field = target is null ? null : scenario.Kinds.ExpectField(target.Kind, c.Field);
                var actual = target is null ? "(step did not run)" : field is null ? "?" : Actual(field, target, c.Field);
                results.Add(new ExpectationResult(e.Index, e.Step ?? "scorecard", c.Field, c.Expected, actual, field?.Matches(c.Expected, actual) ?? false, c.At));
            }
        }

        return results;
    }

    /// <summary>The actual value of an expect field on a step's result, as text (through the step's kind).</summary>
    public static string Actual(StepResult step, string field) =>
        ScenarioKinds.Default.ExpectField(step.Kind, field) is { } f ? Actual(f, step, field) : "?";

    private static string Actual(ExpectField f, StepResult step, string field) =>
        f.Actual(step, f.Keyed ? field[(f.Name.Length + 1)..] : null);
}
