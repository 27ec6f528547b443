namespace S2Lab.Arch.Tests.Translation;

/// <summary>The vector files of these tests, copied next to the test assembly by the project file.</summary>
internal static class VectorFiles
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Translation", "Vectors", name);

    /// <summary>Non-comment, non-empty lines split on commas, with their 1-based line numbers.</summary>
    public static IEnumerable<(int Line, string[] Fields)> ReadCsv(string name)
    {
        int n = 0;
        foreach (string raw in File.ReadLines(PathOf(name)))
        {
            n++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            yield return (n, line.Split(','));
        }
    }
}
