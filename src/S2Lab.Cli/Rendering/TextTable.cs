using System.Text;

namespace S2Lab.Cli.Rendering;

/// <summary>A table cell: its text and an optional Spectre style ("red", "green") for the terminal.</summary>
internal readonly record struct Cell(string Text, string? Style = null)
{
    public static implicit operator Cell(string text) => new(text);
}

/// <summary>One output line: text pieces with their styles. <see cref="Plain"/> is what a file or a pipe gets.</summary>
internal sealed record StyledLine(IReadOnlyList<(string Text, string? Style)> Segments)
{
    public string Plain => string.Concat(Segments.Select(s => s.Text));

    public static StyledLine Of(string text, string? style = null) => new([(text, style)]);

    /// <summary>The same line without trailing spaces (and without segments left empty by that).</summary>
    public StyledLine TrimEnd()
    {
        var list = Segments.ToList();
        while (list.Count > 0)
        {
            var (text, style) = list[^1];
            var trimmed = text.TrimEnd();
            if (trimmed.Length > 0)
            {
                list[^1] = (trimmed, style);
                break;
            }

            list.RemoveAt(list.Count - 1);
        }

        return new StyledLine(list);
    }
}

/// <summary>
/// A plain-text table that fits a width. Columns get their content's width when everything fits; otherwise the width
/// is shared out and cells wrap between words (<see cref="TextWrap"/>). When even that cannot fit
/// (a terminal narrower than the columns' longest identifiers), each row is printed as a record: the key columns as
/// headings, then one aligned "label  value" line per other column. No line is longer than the width, none ends in a
/// space, and no identifier is cut unless it alone is wider than the line.
/// </summary>
internal sealed class TextTable(params string[] headers)
{
    private const int Gap = 2;
    private readonly List<Cell[]> _rows = [];

    /// <summary>Spaces before every line.</summary>
    public int Indent { get; init; } = 2;

    /// <summary>Record layout: how many leading columns are headings (each on its own line, empty ones skipped).</summary>
    public int KeyColumns { get; init; } = 1;

    public IReadOnlyList<string> Headers { get; } = headers;

    public void AddRow(params Cell[] cells)
    {
        if (cells.Length != Headers.Count)
            throw new ArgumentException($"a row of this table has {Headers.Count} cells, not {cells.Length}", nameof(cells));
        _rows.Add(cells);
    }

    /// <summary>The column widths of the table layout at <paramref name="width"/>, or null when only the record layout fits.</summary>
    public int[]? ColumnWidths(int width)
    {
        var n = Headers.Count;
        var available = width - Indent - (Gap * (n - 1));
        var natural = new int[n];
        var words = new int[n];
        for (var c = 0; c < n; c++)
        {
            // Headers wrap at spaces only: a column is never narrower than its header's longest word.
            natural[c] = Math.Max(1, _rows.Select(r => TextWrap.Natural(r[c].Text)).Append(TextWrap.Natural(Headers[c])).Max());
            words[c] = Math.Max(1, _rows.Select(r => TextWrap.LongestWord(r[c].Text)).Append(TextWrap.LongestWord(Headers[c])).Max());
        }

        if (natural.Sum() <= available)
            return natural;
        // Cells may wrap between words, not inside them: a table whose cells would have to break "Normal-WB" reads
        // worse than the record layout, which has the whole width for each value.
        return words.Sum() <= available ? Share(words, natural, available) : null;
    }

    /// <summary>
    /// Each column gets its floor, then the rest of the width is shared evenly among the columns that would use more
    /// (water-filling): narrow columns reach their full width first and only the widest content wraps.
    /// </summary>
    private static int[] Share(int[] floor, int[] natural, int available)
    {
        var widths = (int[])floor.Clone();
        var extra = available - floor.Sum();
        while (extra > 0)
        {
            var open = Enumerable.Range(0, widths.Length).Where(i => widths[i] < natural[i]).OrderBy(i => natural[i] - widths[i]).ToList();
            if (open.Count == 0)
                break;
            var share = Math.Max(1, extra / open.Count);
            foreach (var i in open)
            {
                var give = Math.Min(Math.Min(share, natural[i] - widths[i]), extra);
                widths[i] += give;
                extra -= give;
            }
        }

        return widths;
    }

    public IReadOnlyList<StyledLine> Render(int width)
    {
        width = Math.Max(width, Indent + 10);
        var lines = ColumnWidths(width) is { } widths ? RenderTable(widths) : RenderRecords(width);
        return lines.Select(l => l.TrimEnd()).ToList();
    }

    /// <summary>The unstyled lines (what redirected output gets).</summary>
    public IReadOnlyList<string> RenderPlain(int width) => Render(width).Select(l => l.Plain).ToList();

    private List<StyledLine> RenderTable(int[] widths)
    {
        var lines = new List<StyledLine>();
        AddRowLines(lines, Headers.Select(h => new Cell(h)).ToArray(), widths);
        lines.Add(StyledLine.Of(new string(' ', Indent) + string.Join(new string(' ', Gap), widths.Select(w => new string('-', w)))));
        foreach (var row in _rows)
            AddRowLines(lines, row, widths);
        return lines;
    }

    private void AddRowLines(List<StyledLine> lines, Cell[] row, int[] widths)
    {
        var wrapped = row.Select((c, i) => TextWrap.Wrap(c.Text, widths[i])).ToList();
        var height = wrapped.Max(w => w.Count);
        for (var l = 0; l < height; l++)
        {
            var parts = wrapped.Select(w => l < w.Count ? w[l] : "").ToList();
            var last = parts.FindLastIndex(p => p.Length > 0);
            var segments = new List<(string, string?)>();
            var pending = new StringBuilder(new string(' ', Indent));
            for (var c = 0; c <= last; c++)
            {
                if (parts[c].Length > 0)
                {
                    if (row[c].Style is null)
                    {
                        pending.Append(parts[c]);
                    }
                    else
                    {
                        segments.Add((pending.ToString(), null));
                        pending.Clear();
                        segments.Add((parts[c], row[c].Style));
                    }
                }

                if (c < last)
                    pending.Append(' ', widths[c] - parts[c].Length + Gap);
            }

            if (pending.Length > 0)
                segments.Add((pending.ToString(), null));
            lines.Add(last < 0 ? StyledLine.Of("") : new StyledLine(segments));
        }
    }

    private List<StyledLine> RenderRecords(int width)
    {
        var lines = new List<StyledLine>();
        var keys = Math.Min(KeyColumns, Headers.Count);
        var labelWidth = Headers.Skip(keys).Select(h => h.Length).DefaultIfEmpty(0).Max() + Gap;
        foreach (var row in _rows)
        {
            for (var k = 0; k < keys; k++)
            {
                if (row[k].Text.Length == 0)
                    continue;
                if (k == 0 && lines.Count > 0)
                    lines.Add(StyledLine.Of(""));
                var indent = Indent + (2 * k);
                foreach (var l in TextWrap.Wrap(row[k].Text, width - indent))
                    lines.Add(new StyledLine([(new string(' ', indent), null), (l, row[k].Style)]));
            }

            var fieldIndent = Indent + (2 * keys);
            for (var c = keys; c < Headers.Count; c++)
            {
                if (row[c].Text.Length == 0)
                    continue;
                var valueWidth = width - fieldIndent - labelWidth;
                if (valueWidth >= 20)
                {
                    var wrapped = TextWrap.Wrap(row[c].Text, valueWidth);
                    for (var l = 0; l < wrapped.Count; l++)
                    {
                        var label = l == 0 ? Headers[c].PadRight(labelWidth) : new string(' ', labelWidth);
                        lines.Add(new StyledLine([(new string(' ', fieldIndent) + label, null), (wrapped[l], row[c].Style)]));
                    }
                }
                else
                {
                    // Too narrow for a label column: the label on its own line, the value below it.
                    lines.Add(StyledLine.Of(new string(' ', fieldIndent) + Headers[c]));
                    foreach (var l in TextWrap.Wrap(row[c].Text, width - fieldIndent - 2))
                        lines.Add(new StyledLine([(new string(' ', fieldIndent + 2), null), (l, row[c].Style)]));
                }
            }
        }

        return lines;
    }
}
