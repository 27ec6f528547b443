using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scorecard;
using Spectre.Console;

namespace S2Lab.Cli.Rendering;

/// <summary>
/// Renders a <see cref="LabReport"/> as text that fits a width: one table per run (phases x regions), then the
/// scorecard. The layout is S2Lab's own (<see cref="TextTable"/>, <see cref="TextWrap"/>); Spectre.Console only
/// writes it, with colours when the output is a terminal.
/// </summary>
internal static class ReportTables
{
    /// <summary>The width when neither the terminal nor COLUMNS says otherwise.</summary>
    public const int DefaultWidth = 80;

    /// <summary>Narrower widths are taken as this (a table needs some room).</summary>
    public const int MinWidth = 40;

    /// <summary>
    /// The width to render for: the terminal's (Console.WindowWidth) when <paramref name="output"/> is the terminal,
    /// else COLUMNS when it holds a number (a pipe or a file, or a caller that wants a width), else 80.
    /// </summary>
    public static int WidthFor(TextWriter output)
    {
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        int width = DefaultWidth;
        if (terminal && SafeWindowWidth() is > 0 and var w)
            width = w;
        else if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var c) && c > 0)
            width = c;
        return Math.Max(MinWidth, width);
    }

    private static int SafeWindowWidth()
    {
        try
        {
            return Console.WindowWidth;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>A console writing to <paramref name="output"/>; colours only when it is the terminal. It never wraps: the lines come wrapped.</summary>
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
        console.Profile.Width = 1 << 16;
        return console;
    }

    /// <summary>Writes lines built by the layout (styles become colours on a terminal, nothing elsewhere).</summary>
    public static void WriteLines(IAnsiConsole console, IEnumerable<StyledLine> lines)
    {
        foreach (var line in lines)
        {
            var sb = new System.Text.StringBuilder();
            foreach (var (text, style) in line.Segments)
                sb.Append(style is null ? Markup.Escape(text) : $"[{style}]{Markup.Escape(text)}[/]");
            console.MarkupLine(sb.ToString());
        }
    }

    /// <summary>A paragraph wrapped to <paramref name="width"/>; continuation lines get <paramref name="hanging"/> more spaces.</summary>
    public static IEnumerable<StyledLine> Paragraph(string text, int width, int indent = 0, int hanging = 0, string? style = null)
    {
        var lines = TextWrap.Wrap(text, width - indent, width - indent - hanging);
        return lines.Select((l, i) => new StyledLine([(new string(' ', i == 0 ? indent : indent + hanging), null), (l, style)]).TrimEnd());
    }

    /// <summary>
    /// Writes plain text lines to <paramref name="output"/>, wrapping each line longer than <paramref name="width"/> at
    /// word and separator boundaries; its continuation lines keep its indentation plus <paramref name="hanging"/>.
    /// Lines that fit are written as they are (aligned columns keep their spacing).
    /// </summary>
    public static void WriteWrapped(TextWriter output, string text, int width, int hanging = 4)
    {
        foreach (var raw in text.TrimEnd('\n').Split('\n'))
        {
            var line = raw.TrimEnd();
            if (line.Length <= width)
            {
                output.WriteLine(line);
                continue;
            }

            var indent = line.Length - line.TrimStart().Length;
            foreach (var l in Paragraph(line.TrimStart(), width, indent, hanging))
                output.WriteLine(l.Plain);
        }
    }

    /// <summary>A heading rule: <c>-- title -----</c> to the width (ASCII, so that byte-counting tools measure it right).</summary>
    public static StyledLine RuleLine(string title, int width, string? style = null)
    {
        var head = $"-- {title} ";
        if (head.Length + 3 > width)
            return StyledLine.Of(title, style);
        return new StyledLine([("-- ", null), (title, style), (" " + new string('-', width - head.Length), null)]);
    }

    public static void Write(IAnsiConsole console, LabReport report, int width, bool showRuns = true, bool explain = false)
    {
        width = Math.Max(MinWidth, width);
        WriteLines(console, [RuleLine(report.Scenario, width, "bold")]);
        if (report.Description.Length > 0)
            WriteLines(console, Paragraph(report.Description.Trim(), width, style: "dim"));
        if (showRuns)
        {
            foreach (var run in report.Runs)
            {
                WriteRun(console, run, width);
                if (explain)
                    WriteExplanations(console, run, width);
            }
        }

        WriteScorecard(console, report.Scorecard, width);
        WriteExpectations(console, report, width);
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

    private static void WriteRun(IAnsiConsole console, RunResult run, int width)
    {
        console.WriteLine();
        WriteLines(console, [RuleLine(run.Name, width, "bold yellow")]);
        foreach (var h in run.Hosts)
            WriteLines(console, Paragraph(h.ToString(), width, indent: 2, hanging: 2));

        // One block of rows per phase (a start, a migration), one row per region; the phase names the VM's run and
        // the step id, so that restarts of the same VM on the same host stay apart.
        var rows = new List<Row>();
        var notes = new List<(string Text, string? Style)>();
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

                    if (st.Outcome != Vmm.StartOutcome.Started)
                    {
                        // The VM never ran in this phase: its accesses are all "not running"; the rows keep the memslot
                        // outcomes and say once why it did not start.
                        current = [];
                        if (block.Count > 0)
                            block[0].Accesses.Add($"VM not started ({LabText.Start(st.Outcome)}): {st.Reason}");
                        else
                            notes.Add(($"{st.Phase}: {LabText.Word(st.Outcome)}: {st.Reason}", null));
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

                    var outcome = $"{m.Phase}: {LabText.Word(m.Outcome)}";
                    if (m.Reason.Length > 0)
                        outcome += $": {m.Reason}";
                    if (m.FailedCall.Length > 0)
                        outcome += $" [{m.FailedCallText}]";
                    if (m.Changes.Count > 0)
                        outcome += "; changed: " + string.Join("; ", m.Changes.Select(c => $"{c.Region} {c.Before} -> {c.After}"));
                    if (m.Rounds.Count > 0)
                        outcome += $"; RAM pre-copy ({m.PrecopyText})";
                    if (m.DataText.Length > 0)
                        outcome += $"; {m.DataText}";
                    foreach (var c in m.DeviceCopies.Concat(m.RamCopies ?? []).Where(c => c.Hazards.Count > 0))
                        outcome += $"; {c.Region}: {c.HazardText}";
                    notes.Add((outcome, m.Outcome is MigrationVerdict.SucceededSameTypes ? null : "bold"));
                    // After a switch-over the guest runs on: later accesses are not rows of this table (the
                    // migration's rows show the guest on the destination).
                    current = [];
                    break;
                case RangeResult r:
                    notes.Add(($"{r.Phase}: {r.Summary}", null));
                    break;
            }
        }

        EndBlock();

        // Record layout (narrow terminals): the phase is a heading, each region a sub-heading.
        var table = new TextTable("phase", "region", "memslot", "accesses", "stage-2 MemAttr", "guest sees", "CMOs", "hazards") { KeyColumns = 2 };
        string last = "";
        foreach (var r in rows)
        {
            table.AddRow(
                r.Phase == last ? "" : r.Phase,
                // Collapsed rows list several regions: one a line, so that the column stays as wide as one name.
                r.Region.Replace(", ", ",\n", StringComparison.Ordinal),
                Colour(r.Memslot, r.Memslot.StartsWith('0')),
                string.Join(", ", r.Accesses),
                r.Stage2,
                r.Effective,
                Colour(r.Cmo, !r.Cmo.Contains("impossible", StringComparison.Ordinal)),
                Colour(r.Hazards, r.Hazards is "" or "none" or "-"));
            last = r.Phase;
        }

        WriteLines(console, table.Render(width));
        foreach (var (text, style) in notes)
            WriteLines(console, Paragraph(text, width, indent: 2, hanging: 4, style: style));
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
    private static void WriteExplanations(IAnsiConsole console, RunResult run, int width)
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
                WriteLines(console, Paragraph($"{s.Label}: {v.Region} on {v.Host}", width, indent: 2, hanging: 4));
                foreach (var line in v.Explanation)
                    WriteLines(console, Paragraph(line, width, indent: 4, hanging: 4));
            }
        }
    }

    /// <summary>What KVM_SET_USER_MEMORY_REGION(2) returned: 0 (with the flags asked for) or the errno; or what the VMM did.</summary>
    private static string MemslotText(RegionSetupResult r) => r.Outcome == Vmm.RegionOutcome.Created
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

    private static Cell Colour(string text, bool good) => new(text, text.Length == 0 || good ? null : "red");

    /// <summary>
    /// The scorecard: design, variant and the six properties, each column as wide as its content. The properties are
    /// headed by their titles when that fits without widening a column past its yes/no, else by their numbers with a
    /// legend above the table.
    /// </summary>
    public static void WriteScorecard(IAnsiConsole console, IReadOnlyList<ScorecardRow> rows, int width)
    {
        console.WriteLine();
        WriteLines(console, Paragraph("Scorecard (computed from the runs above)", width, style: "bold"));
        TextTable Build(Func<ScorecardProperty, string> header)
        {
            var table = new TextTable(["design", "variant", .. ScorecardRow.Properties.Select(header)]) { KeyColumns = 2 };
            foreach (var r in rows)
                table.AddRow([r.Design, r.Variant, .. ScorecardRow.Properties.Select(p => r.Holds(p) ? new Cell("yes", "green") : new Cell("no", "red bold"))]);
            return table;
        }

        var titled = Build(p => p.Title);
        var widths = titled.ColumnWidths(width);
        var fits = widths is not null && rows.All(r => widths[0] >= r.Design.Length && widths[1] >= r.Variant.Length);
        if (!fits)
        {
            WriteLines(console, Paragraph(string.Join(", ", ScorecardRow.Properties.Select(p => p.Title)), width, indent: 2, hanging: 2));
            titled = Build(p => p.Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        WriteLines(console, titled.Render(width));
        foreach (var r in rows)
        {
            foreach (var p in ScorecardRow.Properties.Where(p => !r.Holds(p)))
            {
                var ev = r.Evidence[p.Json].Evidence;
                WriteLines(console, Paragraph($"{r.Name} fails {p.Number} ({p.Name}): {ev[0]}{(ev.Count > 1 ? $" (+{ev.Count - 1} more)" : "")}", width, indent: 2, hanging: 4));
            }
        }
    }

    private static void WriteExpectations(IAnsiConsole console, LabReport report, int width)
    {
        var all = report.Checks.ToList();
        if (all.Count == 0)
            return;
        var failed = all.Where(c => !c.Check.Passed).ToList();
        console.WriteLine();
        WriteLines(console, failed.Count == 0
            ? Paragraph($"expectations: {all.Count} checked, all passed", width, style: "green")
            : Paragraph($"expectations: {failed.Count} of {all.Count} FAILED", width, style: "red"));
        foreach (var (run, c) in failed)
        {
            WriteLines(console, Paragraph(
                $"{report.File}:{c.At.Line}:{c.At.Column}: {run.Name}: {c.StepLabel} {c.Field}: expected {c.Expected}, got {c.Actual}", width, indent: 2, hanging: 4));
        }
    }
}
