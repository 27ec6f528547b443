using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>
/// <c>expect</c>: assertions on an earlier step's result (the fields its kind declares in <see cref="IStepKind.Expect"/>),
/// or without <c>step</c> on the run's scorecard.
/// </summary>
internal sealed class ExpectStepKind : IStepKind
{
    public string Name => "expect";

    public StepSpec? Read(StepReader r)
    {
        var (b, sc, path) = (r.B, r.Scenario, r.Path);
        var f = b.Map(r.Body, path);
        if (f is null)
            return null;
        var stepNode = f.Opt("step");
        var stepId = b.Name(stepNode, $"{path}.step");
        StepSpec? target = null;
        if (stepId is not null && !sc.TryStep(stepId, out target) && !sc.IsBadStepId(stepId))
            b.Error(stepNode!.Start, $"{path}.step", $"no earlier step has id '{stepId}'; known ids: {sc.KnownStepIds}");
        var designs = sc.ReadNames(f.Opt("designs"), $"{path}.designs", checkDesigns: true);
        var variants = sc.ReadNames(f.Opt("variants"), $"{path}.variants", checkDesigns: false);
        var allowed = target is null ? null : sc.Kinds.Step(target.Kind)?.Expect ?? [];
        var checks = new List<Expectation>();
        foreach (var (key, value) in f.Entries)
        {
            if (key.Text is "step" or "designs" or "variants")
                continue;
            f.Opt(key.Text);
            var p = $"{path}.{key.Text}";
            if (stepId is not null && target is null)
                continue;
            if (allowed is null)
            {
                if (key.Text == "scorecard")
                    ReadScorecard(b, value, p, checks);
                else
                    b.Error(key.Start, p, "without 'step', an expect checks only: scorecard");
                continue;
            }

            var field = allowed.FirstOrDefault(x => x.Name == key.Text);
            if (field is null)
            {
                b.Error(key.Start, p, $"cannot be checked on a {target!.Kind} step; fields for {target.Kind}: {string.Join(", ", allowed.Select(x => x.Name))}");
                continue;
            }

            ReadCheck(b, field, value, p, checks);
        }

        f.Done();
        if (checks.Count == 0 && b.Errors.Count == 0)
            b.Error(f.At, path, "an expect step needs at least one field to check");
        return new ExpectStep(r.Index, r.Id, r.Body.Start, target?.Id, designs, variants, checks);
    }

    /// <summary><c>scorecard: { property: true|false }</c>.</summary>
    private static void ReadScorecard(Binder b, SyntaxNode value, string path, List<Expectation> checks)
    {
        var mf = b.Map(value, path);
        if (mf is null)
            return;
        mf.AllRead();
        foreach (var (k, v) in mf.Entries)
        {
            var p = $"{path}.{k.Text}";
            if (!ExpectFields.ScorecardProperties.Contains(k.Text))
            {
                b.Error(k.Start, p, $"unknown property; properties: {string.Join(", ", ExpectFields.ScorecardProperties)}");
                continue;
            }

            if (b.Bool(v, p) is { } bv)
                checks.Add(new Expectation($"scorecard.{k.Text}", bv ? "true" : "false", v.Start));
        }
    }

    private static void ReadCheck(Binder b, ExpectField field, SyntaxNode value, string path, List<Expectation> checks)
    {
        // A keyed field is a map: memslots: { ram: ok } checks memslots.ram.
        if (field.Keyed)
        {
            var mf = b.Map(value, path);
            if (mf is null)
                return;
            mf.AllRead();
            foreach (var (k, v) in mf.Entries)
            {
                var p = $"{path}.{k.Text}";
                if (b.Str(v, p) is not { } text)
                    continue;
                if (field.Validate(text) is { } why)
                    b.Error(v.Start, p, why);
                else
                    checks.Add(new Expectation($"{field.Name}.{k.Text}", text, v.Start));
            }

            return;
        }

        string? expected = value switch
        {
            SequenceNode s => string.Join(",", s.Items.Select((x, i) => b.Str(x, $"{path}[{i}]") ?? "")),
            _ => b.Str(value, path),
        };
        if (expected is null)
            return;
        if (field.Validate(expected) is { } problem)
            b.Error(value.Start, path, problem);
        else
            checks.Add(new Expectation(field.Name, expected, value.Start));
    }

    public bool Check(StepSpec step, StepReader r) => true;

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run) => null;

    public IReadOnlyList<ExpectField> Expect { get; } = [];
}
