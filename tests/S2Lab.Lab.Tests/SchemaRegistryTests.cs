using System.Text.RegularExpressions;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;

namespace S2Lab.Lab.Tests;

/// <summary>
/// docs/scenario-schema.md is checked against the kind registry (docs/architecture.md, "Registries"): the step
/// actions, the expect fields per step kind with their words, the device kinds with their fields, and the backings.
/// A kind added to <see cref="ScenarioKinds"/> without its documentation, or documented but not registered, fails.
/// </summary>
public partial class SchemaDocTests
{
    private static readonly Lazy<string> Doc = new(() => File.ReadAllText(Path.Combine(Repo.Root, "docs", "scenario-schema.md")));

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex CellSplit();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();

    /// <summary>The rows of the first table whose header line starts with <paramref name="header"/> (cells trimmed).</summary>
    private static List<string[]> Table(string header, int from = 0)
    {
        var lines = Doc.Value[from..].Split('\n');
        var start = Array.FindIndex(lines, l => l.StartsWith(header, StringComparison.Ordinal));
        Assert.True(start >= 0, $"docs/scenario-schema.md has no table starting '{header}'");
        return lines.Skip(start + 2).TakeWhile(l => l.StartsWith('|'))
            .Select(l => CellSplit().Split(l.Trim().Trim('|')).Select(c => c.Trim()).ToArray()).ToList();
    }

    private static string Unquote(string cell) => Code().Match(cell) is { Success: true } m ? m.Groups[1].Value : cell;

    [Fact]
    public void The_steps_table_lists_every_registered_step_kind_in_order()
    {
        var documented = Table("| action | form |").Select(r => Unquote(r[0])).ToList();
        Assert.Equal(ScenarioKinds.Default.Steps.Select(k => k.Name), documented);
    }

    [Fact]
    public void The_expect_table_lists_each_kinds_expect_fields_and_their_words()
    {
        var rows = Table("| step kind | field | values |");
        var documented = rows.Where(r => r[0] != "none").Select(r => (Kind: Unquote(r[0]), Field: Unquote(r[1]))).ToList();
        var registered = ScenarioKinds.Default.Steps.SelectMany(k => k.Expect.Select(f => (Kind: k.Name, Field: f.Name))).ToList();
        Assert.Equal(registered, documented);
        Assert.Contains(rows, r => r[0] == "none" && Unquote(r[1]) == "scorecard");

        // Every word a field accepts is in its row (a field whose words are "as read" shares the read row's).
        foreach (var kind in ScenarioKinds.Default.Steps)
        {
            foreach (var f in kind.Expect.Where(f => f.Values is not null))
            {
                var row = rows.Single(r => Unquote(r[0]) == kind.Name && Unquote(r[1]) == f.Name);
                var text = row[2].StartsWith("as `", StringComparison.Ordinal)
                    ? rows.Single(r => Unquote(r[0]) == kind.Name && Unquote(r[1]) == Unquote(row[2]))[2]
                    : row[2];
                var words = Code().Matches(text).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.OrdinalIgnoreCase);
                Assert.All(f.Values!, v => Assert.Contains(v, words));
            }
        }
    }

    [Fact]
    public void Each_registered_device_kind_has_its_field_table()
    {
        var doc = Doc.Value;
        var documented = Regex.Matches(doc, "^`kind: ([a-z0-9-]+)`", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(ScenarioKinds.Default.Devices.Select(d => d.Name), documented);
        foreach (var d in ScenarioKinds.Default.Devices)
        {
            var at = doc.IndexOf($"`kind: {d.Name}`", StringComparison.Ordinal);
            var fields = Table("| field | type | default | meaning |", at).Select(r => Unquote(r[0])).ToList();
            Assert.Equal(d.Fields, fields);
        }
    }

    [Fact]
    public void The_backing_table_lists_every_registered_backing_with_its_fields()
    {
        var rows = Table("| backing | fields | meaning |");
        Assert.Equal(ScenarioKinds.Default.Backings.Select(b => b.Name), rows.Select(r => Unquote(r[0])));
        foreach (var b in ScenarioKinds.Default.Backings)
        {
            var row = rows.Single(r => Unquote(r[0]) == b.Name);
            Assert.Equal(b.Fields, Code().Matches(row[1]).Select(m => m.Groups[1].Value));
        }
    }

    [Fact]
    public void Every_expect_field_reads_its_result_through_the_registry_not_a_fallback()
    {
        // ExpectFields.For, used by validation messages, is the registry's list.
        foreach (var k in ScenarioKinds.Default.Steps)
            Assert.Equal(k.Expect.Select(f => f.Name), ExpectFields.For(k.Name));
        Assert.Equal(["scorecard"], ExpectFields.For(null));
    }
}
