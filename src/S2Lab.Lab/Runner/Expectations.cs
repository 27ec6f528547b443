using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Scenarios;
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
                var actual = c.Field.StartsWith("scorecard.", StringComparison.Ordinal)
                    ? row.Get(c.Field["scorecard.".Length..]) ? "true" : "false"
                    : target is null ? "(step did not run)" : Actual(target, c.Field);
                results.Add(new ExpectationResult(e.Index, e.Step ?? "scorecard", c.Field, c.Expected, actual, Matches(c.Field, c.Expected, actual), c.At));
            }
        }

        return results;
    }

    /// <summary>The actual value of an expect field on a step's result, as text.</summary>
    public static string Actual(StepResult step, string field)
    {
        switch (step)
        {
            case StartResult s:
                if (field.StartsWith("memslots.", StringComparison.Ordinal))
                    return s.Regions.FirstOrDefault(r => r.Region == field["memslots.".Length..])?.Text ?? "(no such region)";
                return field switch
                {
                    "outcome" => LabText.Word(s.Outcome),
                    "errno" => LabText.Errno(s.Errno),
                    "cap243" => s.Cap243,
                    _ => "?",
                };
            case StopResult s:
                return s.Outcome;
            case AccessResult a:
                {
                    var v = a.Region;
                    return field switch
                    {
                        "read" or "write" or "exec" => v.Accesses.LastOrDefault(x => x.Type.ToString().Equals(field, StringComparison.OrdinalIgnoreCase)) is { } x ? LabText.Word(x.Outcome) : "(not accessed)",
                        "stage2" => LabText.Stage2(v.Stage2),
                        "effective" => v.Effective ?? LabText.None,
                        "cmo" => v.Cmo.Summary,
                        "hazards" => v.Hazards.Count == 0 ? "none" : string.Join(",", v.Hazards.Select(h => h.Name)),
                        "value" => v.Accesses.LastOrDefault(x => x.Type == AccessType.Read && x.Value is not null)?.Value is { } val ? $"0x{val:X}" : "(no read)",
                        // What the last read should have returned (the last write anyone made): its value unless stale.
                        "expected" => v.Accesses.LastOrDefault(x => x.Type == AccessType.Read && x.Value is not null) is { } rd ? $"0x{rd.Expected ?? rd.Value:X}" : "(no read)",
                        _ => "?",
                    };
                }

            case RangeResult r:
                return LabText.Errno(r.Errno);
            case MigrateResult m:
                return field switch
                {
                    "outcome" => LabText.Word(m.Outcome),
                    "errno" => LabText.Errno(m.Errno),
                    "call" => m.FailedCall.Length == 0 ? "none" : m.FailedCall,
                    "changed" => m.Changes.Count == 0 ? "none" : string.Join(",", m.Changes.Select(c => c.Region)),
                    "dataIntact" => m.DataIntact is { } b ? b ? "true" : "false" : "n/a",
                    "deviceCopy" => string.Join(",", m.DeviceCopies.Where(c => c.Bytes > 0).Select(c => c.Region)),
                    _ => "?",
                };
            default:
                return "?";
        }
    }

    /// <summary>Compares without case; lists as sets; numbers by value; "call" by prefix (the call name without its arguments).</summary>
    public static bool Matches(string field, string expected, string actual)
    {
        if (field is "value" or "expected")
            return Binder.TryParseSize(expected, out var ev) && Binder.TryParseSize(actual, out var av) && ev == av;
        if (field is "hazards" or "changed" or "deviceCopy")
        {
            static HashSet<string> Set(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Where(x => x != "none").Select(x => x.ToLowerInvariant()).ToHashSet();
            return Set(expected).SetEquals(Set(actual));
        }

        if (field == "call")
            return actual.StartsWith(expected, StringComparison.OrdinalIgnoreCase);
        // A call that succeeded returns 0: "0" and "ok" mean the same.
        if (field is "errno" or "result" || field.StartsWith("memslots.", StringComparison.Ordinal))
            expected = expected.Trim() == "0" ? "ok" : expected;
        return string.Equals(expected.Trim(), actual.Trim(), StringComparison.OrdinalIgnoreCase);
    }
}
