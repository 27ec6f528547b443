using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scorecard;
using Spectre.Console;

namespace S2Lab.Cli.Rendering;

/// <summary>Renders a <see cref="LabReport"/> with Spectre.Console: one table per run (phases x regions), then the scorecard.</summary>
internal static class ReportTables
{
    /// <summary>A console writing to <paramref name="output"/>; colours only when it is the terminal.</summary>
    public static IAnsiConsole ConsoleFor(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        // A terminal gets its own width (Spectre wraps cells to fit); redirected output gets room for every column.
        console.Profile.Width = terminal && Console.WindowWidth > 0 ? Console.WindowWidth : 200;
        return console;
    }

    public static void Write(IAnsiConsole console, LabReport report, bool showRuns = true, bool explain = false)
    {
        console.Write(new Rule($"[bold]{Markup.Escape(report.Scenario)}[/]").LeftJustified());
        if (report.Description.Length > 0)
            console.MarkupLine($"[dim]{Markup.Escape(report.Description.Trim())}[/]");
        if (showRuns)
        {
            foreach (var run in report.Runs)
            {
                WriteRun(console, run);
                if (explain)
                    WriteExplanations(console, run);
            }
        }

        WriteScorecard(console, report.Scorecard);
        WriteExpectations(console, report);
    }

    private sealed class Row
    {
        public required string Phase { get; init; }

        public required string Region { get; set; }

        public string Memslot { get; set; } = "";

        public List<string> Accesses { get; } = [];

        public string Stage2 { get; set; } = "";

        public string Effective { get; set; } = "";

        public string Cmo { get; set; } = "";

        public string Hazards { get; set; } = "";

        public List<string> CmoList { get; set; } = [];

        public List<string> HazardList { get; set; } = [];
    }

    private static void WriteRun(IAnsiConsole console, RunResult run)
    {
        console.WriteLine();
        console.Write(new Rule($"[bold yellow]{Markup.Escape(run.Name)}[/]").LeftJustified());
        foreach (var h in run.Hosts)
        {
            console.MarkupLine(Markup.Escape($"  {h}"));
        }

        // One block of rows per phase (a start, a migration), one row per region; the phase names the VM's run and
        // the step id, so that restarts of the same VM on the same host stay apart.
        var rows = new List<Row>();
        var notes = new List<string>();
        var block = new List<Row>();
        var current = new Dictionary<string, Row>();
        void EndBlock()
        {
            rows.AddRange(Collapse(block));
            block = [];
            current = [];
        }

        foreach (var s in run.Steps)
        {
            switch (s)
            {
                case StartResult st:
                    EndBlock();
                    foreach (var r in st.Regions)
                    {
                        var row = new Row { Phase = st.Phase, Region = r.Region, Memslot = MemslotText(r) };
                        block.Add(row);
                        current[r.Region] = row;
                    }

                    if (st.Outcome != VmStartOutcome.Ok)
                    {
                        // The VM never ran in this phase: its accesses are all "not running"; the rows keep the memslot
                        // outcomes and say once why it did not start.
                        current = [];
                        if (block.Count > 0)
                            block[0].Accesses.Add($"VM not started ({LabText.Word(st.Outcome)}): {st.Reason}");
                        else
                            notes.Add(Markup.Escape($"{st.Phase}: {LabText.Word(st.Outcome)}: {st.Reason}"));
                    }

                    break;
                case AccessResult a:
                    if (!current.TryGetValue(a.Region.Region, out var target))
                        break;
                    Fill(target, a.Region);
                    break;
                case MigrateResult m:
                    EndBlock();
                    var dest = new Dictionary<string, Row>();
                    foreach (var r in m.DestinationRegions)
                    {
                        var row = new Row { Phase = m.Phase, Region = r.Region, Memslot = MemslotText(r) };
                        block.Add(row);
                        dest[r.Region] = row;
                    }

                    foreach (var v in m.AfterSwitchover)
                    {
                        if (!dest.TryGetValue(v.Region, out var row))
                            block.Add(row = new Row { Phase = m.Phase, Region = v.Region });
                        Fill(row, v);
                    }

                    var outcome = $"{Markup.Escape(m.Phase)}: [bold]{Markup.Escape(LabText.Word(m.Outcome))}[/]";
                    if (m.Reason.Length > 0)
                        outcome += Markup.Escape($": {m.Reason}");
                    if (m.FailedCall.Length > 0)
                        outcome += Markup.Escape($" [{m.FailedCallText}]");
                    if (m.Changes.Count > 0)
                        outcome += Markup.Escape("; changed: " + string.Join("; ", m.Changes.Select(c => $"{c.Region} {c.Before} -> {c.After}")));
                    if (m.Rounds.Count > 0)
                        outcome += Markup.Escape($"; RAM pre-copy ({m.PrecopyText})");
                    if (m.DataIntact is { } ok)
                        outcome += Markup.Escape($"; data {(ok ? "intact" : "CORRUPTED")}");
                    foreach (var c in m.DeviceCopies.Where(c => c.Hazards.Count > 0))
                        outcome += Markup.Escape($"; {c.Region}: {string.Join(", ", c.Hazards.Select(h => h.Name))}");
                    notes.Add(outcome);
                    // After a switch-over the guest runs on: later accesses are not rows of this table (the
                    // migration's rows show the guest on the destination).
                    current = [];
                    break;
                case RangeResult r:
                    notes.Add(Markup.Escape($"{r.Phase}: {r.Summary}"));
                    break;
            }
        }

        EndBlock();

        var table = new Table().Border(TableBorder.Simple);
        foreach (var c in new[] { "phase", "region", "memslot", "accesses", "stage-2 MemAttr", "guest sees", "CMOs", "hazards" })
            table.AddColumn(c);
        // Collapsed rows list several regions: they wrap one region a line instead of widening the column.
        var regionWidth = rows.SelectMany(r => r.Region.Split(", ")).Select(n => n.Length + 1).DefaultIfEmpty(6).Max();
        table.Columns[1].Width(Math.Max(regionWidth, "region".Length));
        string last = "";
        foreach (var r in rows)
        {
            table.AddRow(
                Markup.Escape(r.Phase == last ? "" : r.Phase),
                Markup.Escape(r.Region),
                Colour(r.Memslot, r.Memslot.StartsWith('0')),
                Markup.Escape(string.Join(", ", r.Accesses)),
                Markup.Escape(r.Stage2),
                Markup.Escape(r.Effective),
                Colour(r.Cmo, !r.Cmo.Contains("impossible", StringComparison.Ordinal)),
                Colour(r.Hazards, r.Hazards is "" or "none" or "-"));
            last = r.Phase;
        }

        console.Write(table);
        foreach (var n in notes)
            console.MarkupLine("  " + n);
    }

    /// <summary>
    /// Regions of one phase the guest did not touch and whose memslot outcome is the same share one row
    /// ("ram, gpu0.bar0, gpu0.resmem | 0"): the memslot column stays, the empty rows go.
    /// </summary>
    private static List<Row> Collapse(List<Row> block)
    {
        var result = new List<Row>();
        var groups = new Dictionary<string, Row>();
        foreach (var r in block)
        {
            bool idle = r.Stage2.Length == 0 && r.Accesses.All(a => a.StartsWith("VM not started", StringComparison.Ordinal));
            if (!idle)
            {
                result.Add(r);
                continue;
            }

            if (groups.TryGetValue(r.Memslot, out var g))
            {
                g.Region += ", " + r.Region;
                g.Accesses.AddRange(r.Accesses);
                continue;
            }

            var copy = new Row { Phase = r.Phase, Region = r.Region, Memslot = r.Memslot };
            copy.Accesses.AddRange(r.Accesses);
            groups[r.Memslot] = copy;
            result.Add(copy);
        }

        return result;
    }

    /// <summary>The model's decision chain for every guest access of a run (rule numbers in parentheses).</summary>
    private static void WriteExplanations(IAnsiConsole console, RunResult run)
    {
        foreach (var s in run.Steps)
        {
            IEnumerable<RegionAccessResult> views = s switch
            {
                AccessResult a => [a.Region],
                MigrateResult m => m.AfterSwitchover,
                _ => [],
            };
            foreach (var v in views.Where(v => v.Explanation.Count > 0))
            {
                console.MarkupLine(Markup.Escape($"  {s.Label}: {v.Region} on {v.Host}"));
                foreach (var line in v.Explanation)
                    console.MarkupLine(Markup.Escape($"    {line}"));
            }
        }
    }

    /// <summary>What KVM_SET_USER_MEMORY_REGION(2) returned: 0 (with the flags asked for) or the errno; or what the VMM did.</summary>
    private static string MemslotText(RegionSetupResult r) => r.Outcome == SetupOutcome.Ok
        ? (r.Flags == Kernel.Kvm.Uapi.KvmMemFlags.None ? "0" : $"0 ({r.Flags})")
        : r.Text;

    /// <summary>
    /// Adds one access step's view of a region to its row. A row can gather several steps (a read, then a write that
    /// left as an MMIO exit): the mapping columns keep the last mapping a step saw, hazards and CMOs accumulate.
    /// </summary>
    private static void Fill(Row row, RegionAccessResult v)
    {
        foreach (var a in v.Accesses)
            row.Accesses.Add(a.ToString());
        bool ran = v.Accesses.Any(a => a.Outcome != AccessOutcome.NotRunning);
        if (v.Stage2MemAttr is not null || row.Stage2.Length == 0)
            row.Stage2 = v.Stage2MemAttr ?? LabText.None;
        if (v.Effective is not null || row.Effective.Length == 0)
            row.Effective = v.Effective is null ? LabText.None : $"{v.Effective} (MAIR 0x{v.Mair:X2})";
        if (!ran)
        {
            row.Cmo = row.Cmo.Length == 0 ? "-" : row.Cmo;
            row.Hazards = row.Hazards.Length == 0 ? "-" : row.Hazards;
            return;
        }

        var cmos = new List<string>(row.CmoList);
        if (v.Cmo.Needed.Count > 0)
            cmos.Add(v.Cmo.Text);
        row.CmoList = cmos.Distinct().ToList();
        row.Cmo = row.CmoList.Count == 0 ? "none" : string.Join("; ", row.CmoList);
        row.HazardList = row.HazardList.Concat(v.Hazards.Select(h => h.Name)).Distinct().ToList();
        row.Hazards = row.HazardList.Count == 0 ? "none" : string.Join(", ", row.HazardList);
    }

    private static string Colour(string text, bool good) =>
        text.Length == 0 ? "" : good ? Markup.Escape(text) : $"[red]{Markup.Escape(text)}[/]";

    public static void WriteScorecard(IAnsiConsole console, IReadOnlyList<ScorecardRow> rows)
    {
        console.WriteLine();
        var table = new Table().Title("[bold]Scorecard[/] (computed from the runs above)").Border(TableBorder.Rounded);
        table.AddColumn("design");
        table.AddColumn("variant");
        foreach (var p in ScorecardRow.Properties)
            table.AddColumn(new TableColumn(p.Title).Centered());
        foreach (var r in rows)
        {
            var cells = new List<string> { Markup.Escape(r.Design), Markup.Escape(r.Variant) };
            cells.AddRange(ScorecardRow.Properties.Select(p => r.Holds(p) ? "[green]yes[/]" : "[red bold]no[/]"));
            table.AddRow(cells.ToArray());
        }

        console.Write(table);
        foreach (var r in rows)
        {
            foreach (var p in ScorecardRow.Properties.Where(p => !r.Holds(p)))
            {
                var ev = r.Evidence[p.Json].Evidence;
                console.MarkupLine(Markup.Escape($"  {r.Name} fails {p.Number} ({p.Name}): {ev[0]}{(ev.Count > 1 ? $" (+{ev.Count - 1} more)" : "")}"));
            }
        }
    }

    private static void WriteExpectations(IAnsiConsole console, LabReport report)
    {
        var all = report.Checks.ToList();
        if (all.Count == 0)
            return;
        var failed = all.Where(c => !c.Check.Passed).ToList();
        console.WriteLine();
        console.MarkupLine(failed.Count == 0
            ? $"[green]expectations: {all.Count} checked, all passed[/]"
            : $"[red]expectations: {failed.Count} of {all.Count} FAILED[/]");
        foreach (var (run, c) in failed)
        {
            console.MarkupLine(Markup.Escape(
                $"  {report.File}:{c.At.Line}:{c.At.Column}: {run.Name}: {c.StepLabel} {c.Field}: expected {c.Expected}, got {c.Actual}"));
        }
    }
}
