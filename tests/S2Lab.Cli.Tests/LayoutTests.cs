using CsCheck;
using S2Lab.Cli.Rendering;
using S2Lab.Lab.Scorecard;

namespace S2Lab.Cli.Tests;

/// <summary>
/// Text layout invariants at the widths people use: no line longer than the width, no trailing spaces, and no
/// identifier cut (every token of a cell, split at spaces and separators, appears whole in the output).
/// </summary>
public class LayoutTests
{
    private static readonly int[] Widths = [60, 80, 120, 200];

    private const string IdentChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.)";

    /// <summary>Cell text: identifier-like tokens (up to 18 characters) joined by spaces and separators.</summary>
    private static readonly Gen<string> CellText =
        Gen.Select(Gen.Char[IdentChars].Array[1, 18].Select(a => new string(a)), Gen.Char[" " + " " + " " + TextWrap.Separators])
            .Array[0, 8]
            .Select(parts => string.Concat(parts.Select((p, i) => i == parts.Length - 1 ? p.Item1 : p.Item1 + p.Item2)));

    private static List<string> Tokens(IEnumerable<string> lines) => lines.SelectMany(TextWrap.Tokens).ToList();

    private static void AssertFits(IReadOnlyList<string> lines, int width)
    {
        Assert.All(lines, l =>
        {
            Assert.True(l.Length <= width, $"{l.Length} > {width}: '{l}'");
            Assert.False(l.EndsWith(' '), $"trailing space: '{l}'");
        });
    }

    [Fact]
    public void Wrapping_keeps_every_character_in_order_within_the_width()
    {
        Gen.Select(CellText, Gen.Int[10, 200]).Sample((text, width) =>
        {
            var lines = TextWrap.Wrap(text, width);
            AssertFits(lines, width);
            // Only spaces are dropped (at the breaks); nothing is added, lost or moved.
            Assert.Equal(text.Replace(" ", "", StringComparison.Ordinal), string.Concat(lines).Replace(" ", "", StringComparison.Ordinal)); // not a fixture edit
            // Tokens no longer than the width are never cut.
            var output = Tokens(lines);
            Assert.All(TextWrap.Tokens(text).Where(t => t.Length <= width), t => Assert.Contains(t, output));
        }, iter: 2000);
    }

    [Fact]
    public void A_token_wider_than_the_line_is_the_only_thing_ever_cut()
    {
        var text = "short MT_S2_FWB_DEVICE_nGnRE_AND_A_VERY_LONG_TAIL tail";
        var lines = TextWrap.Wrap(text, 12);
        AssertFits(lines, 12);
        Assert.Equal("short", lines[0]);
        Assert.Equal(12, lines[1].Length);
        Assert.EndsWith(" tail", lines[^1], StringComparison.Ordinal);
        Assert.Equal(text.Replace(" ", "", StringComparison.Ordinal), string.Concat(lines).Replace(" ", "", StringComparison.Ordinal)); // not a fixture edit
    }

    [Fact]
    public void Wrapping_prefers_spaces_and_only_splits_a_word_at_its_separators_when_it_does_not_fit_a_line()
    {
        Assert.Equal(["mismatched-alias,", "ram-as-device"], TextWrap.Wrap("mismatched-alias, ram-as-device", 20));
        Assert.Equal(["flag=prefer-", "migratable"], TextWrap.Wrap("flag=prefer-migratable", 14));
        Assert.Equal(["MT_S2_FWB_DEVICE_nGnRE", "(0x1)"], TextWrap.Wrap("MT_S2_FWB_DEVICE_nGnRE (0x1)", 24));
    }

    [Fact]
    public void Tables_fit_every_width_without_cutting_identifiers()
    {
        var header = Gen.Char['a', 'z'].Array[1, 12].Select(a => new string(a));
        var table = Gen.Int[2, 8].SelectMany(columns =>
            Gen.Select(header.Array[columns], CellText.Array[columns].Array[1, 12], Gen.Int[1, 2]));
        table.Sample((headers, rows, keys) =>
        {
            // Unique tokens: each token is suffixed with its cell, so that finding it proves that this one was kept whole.
            var t = new TextTable(headers) { KeyColumns = keys };
            var expected = new List<string>();
            for (var r = 0; r < rows.Length; r++)
            {
                var cells = rows[r].Select((text, c) =>
                    System.Text.RegularExpressions.Regex.Replace(text, "[^ " + string.Concat(TextWrap.Separators.Select(ch => "\\" + ch)) + "]+", m => m.Value + $"r{r}c{c}")).ToArray(); // not a fixture edit
                expected.AddRange(cells.SelectMany(TextWrap.Tokens));
                t.AddRow([.. cells.Select(c => new Cell(c))]);
            }

            foreach (var width in Widths)
            {
                var lines = t.RenderPlain(width);
                AssertFits(lines, width);
                var output = Tokens(lines).ToHashSet();
                Assert.All(expected, tok => Assert.Contains(tok, output));
            }
        }, iter: 300);
    }

    private static readonly Lazy<Dictionary<int, string>> Demo = new(() =>
        Widths.ToDictionary(w => w, w => CliRunner.Table(null, "all", w)));

    [Fact]
    public void The_demo_fits_60_80_120_and_200_columns_and_says_the_same_at_each()
    {
        // Words that only one layout prints: the property titles (legend or headers) and the key columns' headers.
        var propertyWords = ScorecardRow.Properties.SelectMany(p => TextWrap.Tokens(p.Title)).Concat(["phase", "region", "design", "variant"]).ToHashSet();
        var wide = Tokens(Demo.Value[200].Split('\n')).ToHashSet();
        foreach (var width in Widths)
        {
            var lines = Demo.Value[width].TrimEnd('\n').Split('\n');
            AssertFits(lines, width);
            var tokens = Tokens(lines).ToHashSet();
            // The same words at every width: nothing dropped, and no fragment of a cut identifier appears.
            Assert.Empty(wide.Except(tokens).Except(propertyWords));
            Assert.Empty(tokens.Except(wide).Except(propertyWords));
        }

        Assert.Contains("MT_S2_FWB_DEVICE_nGnRE", Demo.Value[60], StringComparison.Ordinal);
        Assert.Contains("0 (ENABLE_CACHEABLE_PFNMAP)", Demo.Value[80], StringComparison.Ordinal);
    }

    [Fact]
    public void The_scorecard_columns_are_as_wide_as_their_content()
    {
        var lines = Demo.Value[80].Split('\n');
        var header = Array.FindIndex(lines, l => l.StartsWith("  design", StringComparison.Ordinal));
        var dashes = lines[header + 1].Trim().Split("  ").Select(d => d.Length).ToArray();
        var rows = lines.Skip(header + 2).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal) && (l.EndsWith("yes", StringComparison.Ordinal) || l.EndsWith("no", StringComparison.Ordinal))).ToList();
        Assert.Equal(8, rows.Count);
        // design and variant: the longest name; the properties (numbered at 80 columns): "yes".
        Assert.Equal([.. new[] { "proposal-memslot-flag".Length, "flag=prefer-migratable".Length }, .. Enumerable.Repeat(3, 6)], dashes);
    }
}
