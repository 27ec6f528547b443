using System.Text.RegularExpressions;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Rules every test project keeps, checked over the sources in tests/. A random test must be replayable: CsCheck's
/// Sample draws a fresh seed per run and prints it on failure ("CsCheck_Seed=..."; replay with that environment
/// variable), and any System.Random is built from a fixed or generated seed, never from the clock.
/// </summary>
public partial class TestHygieneTests
{
    [GeneratedRegex(@"new\s+(System\.)?Random\s*\(\s*\)|Random\.Shared|Random\s+\w+\s*=\s*new\s*\(\s*\)")]
    private static partial Regex UnseededRandom();

    private static IEnumerable<(string File, int Line, string Text)> TestSources()
    {
        var root = Path.Combine(Repo.Root, "tests");
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(Repo.Root, file);
            if (rel.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ||
                rel.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ||
                Path.GetFileName(file) == nameof(TestHygieneTests) + ".cs")
                continue;
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
                yield return (rel, i + 1, lines[i]);
        }
    }

    [Fact]
    public void No_test_uses_an_unseeded_Random()
    {
        var sources = TestSources().ToList();
        Assert.Contains(sources, s => s.File.EndsWith("MemslotOpGenerator.cs", StringComparison.Ordinal)); // the scan sees the differential generator
        var bad = sources.Where(s => UnseededRandom().IsMatch(s.Text))
            .Select(s => $"{s.File}:{s.Line}: {s.Text.Trim()}")
            .ToList();
        Assert.True(bad.Count == 0, "unseeded randomness cannot be replayed:\n" + string.Join("\n", bad));
    }

    [Fact]
    public void No_test_pins_a_CsCheck_seed_through_its_own_variable()
    {
        // One way to replay every property test (CsCheck_Seed), not a variable per test.
        var bad = TestSources().Where(s => s.Text.Contains("seed: Environment.GetEnvironmentVariable", StringComparison.Ordinal))
            .Select(s => $"{s.File}:{s.Line}")
            .ToList();
        Assert.Empty(bad);
    }

    private const string NotAFixtureEdit = "// not a fixture edit";

    [Fact]
    public void Scenario_text_is_edited_only_through_TextEdit()
    {
        // string.Replace on a fixture passes silently when the fixture drifted; TextEdit.Edit fails instead. A Replace that
        // normalises output or paths (not an edit of test input) says so on its line with NotAFixtureEdit.
        var bad = TestSources()
            .Where(s => s.File.Contains("S2Lab.Lab.Tests", StringComparison.Ordinal) || s.File.Contains("S2Lab.Cli.Tests", StringComparison.Ordinal))
            .Where(s => s.Text.Contains(".Replace(", StringComparison.Ordinal) && !s.Text.Contains(NotAFixtureEdit, StringComparison.Ordinal) &&
                        !s.File.EndsWith(nameof(TextEdit) + ".cs", StringComparison.Ordinal))
            .Select(s => $"{s.File}:{s.Line}: {s.Text.Trim()}")
            .ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }
}
