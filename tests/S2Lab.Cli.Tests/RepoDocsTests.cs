using System.Text.RegularExpressions;

namespace S2Lab.Cli.Tests;

/// <summary>
/// The repository's own references: every rule and scorecard property has an entry in docs/rules.md, every link in
/// the Markdown files resolves, every docs/*.md reference in the sources names a file and anchor that exist, and no
/// file points at the reference notes outside the repository.
/// </summary>
public partial class RepoDocsTests
{
    private static readonly string Root = Path.GetDirectoryName(CliRunner.RepoFile("S2Lab.slnx"))!;

    private static readonly string[] SkippedDirs = ["bin", "obj", ".git", "TestResults", "BenchmarkDotNet.Artifacts"];

    private static IEnumerable<string> RepoFiles(params string[] extensions)
    {
        var pending = new Stack<string>([Root]);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var sub in Directory.GetDirectories(dir))
            {
                if (!SkippedDirs.Contains(Path.GetFileName(sub)))
                    pending.Push(sub);
            }

            foreach (var f in Directory.GetFiles(dir))
            {
                if (extensions.Length == 0 || extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
                    yield return f;
            }
        }
    }

    private static string Rel(string path) => Path.GetRelativePath(Root, path).Replace('\\', '/'); // not a fixture edit

    /// <summary>The anchors of a Markdown file: explicit <c>id="..."</c> and GitHub's heading slugs.</summary>
    private static HashSet<string> Anchors(string markdownFile)
    {
        var text = File.ReadAllText(markdownFile);
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in ExplicitAnchor().Matches(text))
            anchors.Add(m.Groups[1].Value);
        foreach (Match m in Heading().Matches(text))
        {
            var slug = new string(m.Groups[1].Value.Trim().ToLowerInvariant()
                .Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-'); // not a fixture edit
            anchors.Add(slug);
        }

        return anchors;
    }

    [Fact]
    public void Every_rule_and_scorecard_property_has_one_anchor_in_docs_rules()
    {
        var text = File.ReadAllText(Path.Combine(Root, "docs", "rules.md"));
        for (var n = 1; n <= 34; n++)
        {
            Assert.Equal(1, Regex.Count(text, $"<a id=\"rule-{n}\"></a>\\s*\\n### Rule {n}:"));
        }

        for (var p = 1; p <= 6; p++)
        {
            Assert.Equal(1, Regex.Count(text, $"<a id=\"property-{p}\"></a>\\s*\\n### Property {p}:"));
        }

        Assert.DoesNotContain("rule-35", text, StringComparison.Ordinal);
        Assert.DoesNotContain("property-7", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Rule_numbers_in_code_comments_and_test_names_are_rules_of_docs_rules()
    {
        var bad = new List<string>();
        foreach (var f in RepoFiles(".cs"))
        {
            var text = File.ReadAllText(f);
            foreach (Match m in CommentRule().Matches(text))
            {
                if (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) is < 1 or > 34)
                    bad.Add($"{Rel(f)}: {m.Value}");
            }

            foreach (Match m in TestRule().Matches(text))
            {
                if (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) is < 1 or > 34)
                    bad.Add($"{Rel(f)}: {m.Value}");
            }
        }

        Assert.Empty(bad);
    }

    [Fact]
    public void Every_relative_link_in_the_markdown_files_resolves()
    {
        var broken = new List<string>();
        var files = RepoFiles(".md").ToList();
        Assert.Contains(files, f => Rel(f) == "README.md");
        Assert.Contains(files, f => Rel(f) == "docs/rules.md");
        foreach (var f in files)
        {
            var text = CodeBlock().Replace(File.ReadAllText(f), ""); // not a fixture edit
            foreach (Match m in MarkdownLink().Matches(text))
            {
                var target = m.Groups[1].Value;
                if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal) ||
                    target.StartsWith("mailto:", StringComparison.Ordinal))
                    continue;
                var hash = target.IndexOf('#', StringComparison.Ordinal);
                var pathPart = hash < 0 ? target : target[..hash];
                var anchor = hash < 0 ? null : target[(hash + 1)..];
                var resolved = pathPart.Length == 0 ? f : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(f)!, pathPart));
                if (!File.Exists(resolved) && !Directory.Exists(resolved))
                    broken.Add($"{Rel(f)}: {target} (no such file)");
                else if (anchor is not null && resolved.EndsWith(".md", StringComparison.Ordinal) && !Anchors(resolved).Contains(anchor))
                    broken.Add($"{Rel(f)}: {target} (no such anchor)");
            }
        }

        Assert.Empty(broken);
    }

    [Fact]
    public void Every_docs_reference_in_the_sources_names_an_existing_file_and_anchor()
    {
        var broken = new List<string>();
        var seen = 0;
        foreach (var f in RepoFiles(".cs", ".yaml", ".json", ".jsonl", ".csv", ".sh"))
        {
            foreach (Match m in DocsReference().Matches(File.ReadAllText(f)))
            {
                seen++;
                var doc = Path.Combine(Root, "docs", m.Groups[1].Value);
                if (!File.Exists(doc))
                    broken.Add($"{Rel(f)}: {m.Value} (no such file)");
                else if (m.Groups[2].Success && !Anchors(doc).Contains(m.Groups[2].Value))
                    broken.Add($"{Rel(f)}: {m.Value} (no such anchor)");
            }
        }

        Assert.True(seen > 20, $"only {seen} docs/ references found: is the pattern right?");
        Assert.Empty(broken);
    }

    [Fact]
    public void No_file_points_at_the_reference_notes_outside_the_repository()
    {
        // Built from parts so that this file does not match itself.
        string[] outside =
        [
            "../" + "shared", "/work/" + "shared", "kvm-arm64-" + "stage2", "arm-memory-" + "attributes", "spec/" + "designs.md",
            "DESIGN" + ".md", "spec " + "§", "spec's " + "§",
        ];
        var hits = new List<string>();
        foreach (var f in RepoFiles(".cs", ".md", ".yaml", ".json", ".jsonl", ".csv", ".sh", ".props", ".csproj", ".slnx"))
        {
            var text = File.ReadAllText(f);
            foreach (var o in outside)
            {
                if (text.Contains(o, StringComparison.OrdinalIgnoreCase))
                    hits.Add($"{Rel(f)}: {o}");
            }
        }

        Assert.Empty(hits);
    }

    [GeneratedRegex("""<a id="([^"]+)"></a>""")]
    private static partial Regex ExplicitAnchor();

    [GeneratedRegex(@"^#{1,6}\s+(.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"^```.*?^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    [GeneratedRegex(@"docs/([a-z0-9-]+\.md)(?:#([a-z0-9_-]+))?")]
    private static partial Regex DocsReference();

    [GeneratedRegex(@"//.*?\b[Rr]ule (\d+)")]
    private static partial Regex CommentRule();

    [GeneratedRegex(@"\bvoid Rule0?(\d+)_")]
    private static partial Regex TestRule();
}
