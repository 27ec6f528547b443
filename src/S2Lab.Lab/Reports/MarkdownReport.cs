using System.Text;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scorecard;

namespace S2Lab.Lab.Reports;

/// <summary>The Markdown form of a <see cref="LabReport"/>: per run, a region table per step; then the scorecard.</summary>
public static class MarkdownReport
{
    public static string Render(LabReport report)
    {
        var sb = new StringBuilder();
        sb.Append("# ").AppendLine(report.Scenario).AppendLine();
        if (report.Description.Length > 0)
            sb.AppendLine(report.Description.Trim()).AppendLine();
        foreach (var run in report.Runs)
        {
            sb.Append("## ").AppendLine(run.Name).AppendLine();
            foreach (var h in run.Hosts)
                sb.AppendLine($"- host {Escape(h.ToString())}");

            sb.AppendLine();
            foreach (var step in run.Steps)
                WriteStep(sb, step);
            var failed = run.Expectations.Where(e => !e.Passed).ToList();
            sb.AppendLine($"Expectations: {run.Expectations.Count - failed.Count}/{run.Expectations.Count} passed.").AppendLine();
            foreach (var e in failed)
                sb.AppendLine($"- FAILED line {e.At.Line}: {e.StepLabel} {e.Field}: expected `{e.Expected}`, got `{e.Actual}`");
            if (failed.Count > 0)
                sb.AppendLine();
        }

        WriteScorecard(sb, report.Scorecard);
        return sb.ToString();
    }

    private static void WriteStep(StringBuilder sb, StepResult step)
    {
        sb.AppendLine($"### {Escape(step.Label)}: {Escape(step.Summary)}").AppendLine();
        switch (step)
        {
            case StartResult s:
                WriteSetup(sb, s.Regions);
                break;
            case AccessResult a:
                WriteRegions(sb, [a.Region]);
                break;
            case MigrateResult m:
                if (m.FailedCall.Length > 0)
                    sb.AppendLine($"Failed call: {Escape(m.FailedCallText)}").AppendLine();
                if (m.DestinationRegions.Count > 0)
                    WriteSetup(sb, m.DestinationRegions);
                if (m.Rounds.Count > 0)
                    sb.AppendLine("RAM pre-copy: " + m.PrecopyText).AppendLine();
                foreach (var c in m.DeviceCopies)
                    sb.AppendLine($"- {c.Region}: {Escape(c.How)}{string.Concat(c.Hazards.Select(h => $" **{h.Name}**: {Escape(h.Detail)}"))}");
                foreach (var c in m.RamCopies ?? [])
                    sb.AppendLine($"- {c.Region}: {Escape(c.How)}{string.Concat(c.Hazards.Select(h => $" **{h.Name}**: {Escape(h.Detail)}"))}");
                if (m.DeviceCopies.Count > 0 || m.RamCopies is { Count: > 0 })
                    sb.AppendLine();
                if (m.AfterSwitchover.Count > 0)
                    WriteRegions(sb, m.AfterSwitchover);
                foreach (var c in m.Changes)
                    sb.AppendLine($"- changed: {c.Region}: {c.Before} -> {c.After}");
                if (m.DataIntact is { } ok)
                    sb.AppendLine($"- data: {(ok ? "intact" : "CORRUPTED")} ({Escape(m.DataCheck)})");
                sb.AppendLine();
                break;
        }
    }

    private static void WriteSetup(StringBuilder sb, IReadOnlyList<RegionSetupResult> regions)
    {
        sb.AppendLine("| region | kind | VMA | memslot flags | memslot |").AppendLine("|---|---|---|---|---|");
        foreach (var r in regions)
            sb.AppendLine($"| {r.Region} | {r.RegionKind} | {Escape(r.Vma?.Description ?? "not mapped")} | {r.Flags} | {(r.Outcome == Vmm.RegionOutcome.Created ? "0" : r.Text)}{(r.Detail.Length > 0 ? $": {Escape(r.Detail)}" : "")} |");
        sb.AppendLine();
    }

    private static void WriteRegions(StringBuilder sb, IReadOnlyList<RegionAccessResult> regions)
    {
        sb.AppendLine("| region | host | MAIR | accesses | stage-2 MemAttr | guest sees | CMOs | hazards |").AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var v in regions)
        {
            var acc = string.Join(", ", v.Accesses.Select(a => $"{LabText.Access(a.Type)}: {a.OutcomeText}{a.StaleText}"));
            var cmo = v.Cmo.Text;
            var hz = v.Hazards.Count == 0 ? "none" : string.Join("; ", v.Hazards.Select(h => h.Name));
            sb.AppendLine($"| {v.Region} | {v.Host} | 0x{v.Mair:X2} | {acc} | {Escape(v.Stage2MemAttr ?? LabText.None)} | {Escape(v.Effective ?? LabText.None)} | {Escape(cmo)} | {Escape(hz)} |");
        }

        sb.AppendLine();
    }

    private static void WriteScorecard(StringBuilder sb, IReadOnlyList<ScorecardRow> rows)
    {
        sb.AppendLine("## Scorecard").AppendLine();
        sb.Append("| design | variant |");
        foreach (var p in ScorecardRow.Properties)
            sb.Append(' ').Append(p.Title).Append(" |");
        sb.AppendLine().Append("|---|---|").AppendLine(string.Concat(Enumerable.Repeat("---|", ScorecardRow.Properties.Count)));
        foreach (var r in rows)
        {
            sb.Append($"| {r.Design} | {r.Variant} |");
            foreach (var p in ScorecardRow.Properties)
                sb.Append(r.Holds(p) ? " yes |" : " **no** |");
            sb.AppendLine();
        }

        sb.AppendLine();
        foreach (var r in rows)
        {
            var fails = ScorecardRow.Properties.Where(p => !r.Holds(p)).ToList();
            if (fails.Count == 0)
                continue;
            sb.AppendLine($"- {r.Name}:");
            foreach (var p in fails)
                sb.AppendLine($"  - {p.Title}: {Escape(string.Join("; ", r.Evidence[p.Json].Evidence))}");
        }
    }

    private static string Escape(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);
}
