using S2Lab.Lab.Replay;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>The replay files under Replays/ (copied next to the test assembly), by relative name.</summary>
public static class GoldenReplays
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Replays");

    /// <summary>Every *.jsonl under Replays/ (optionally one sub-folder), as theory data.</summary>
    public static TheoryData<string> Files(string? folder = null)
    {
        var data = new TheoryData<string>();
        var root = folder is null ? Directory : Path.Combine(Directory, folder);
        if (!System.IO.Directory.Exists(root))
            return data;
        foreach (var f in System.IO.Directory.EnumerateFiles(root, "*.jsonl", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(Directory, f));
        return data;
    }

    public static ReplayFile Load(string name)
    {
        var (file, error) = ReplayParser.ParseFile(Path.Combine(Directory, name));
        Assert.True(error is null, error?.ToString());
        Assert.True(file!.HasExpectations, $"{name} has no \"expect\" values");
        return file;
    }

    /// <summary>The lines whose result differs from the file's expectation, one readable line each.</summary>
    public static IReadOnlyList<string> Mismatches(IEnumerable<ReplayStep> steps, string backend) =>
        steps.Where(s => !s.MatchesExpectation)
            .Select(s => $"line {s.Op.Line}: {ReplayWriter.Format(s.Op, null)} -> {backend} {ErrnoText.Format(s.Result)}, expected {ErrnoText.Format(s.Op.Expected!.Value)}")
            .ToList();
}
