using System.Runtime.CompilerServices;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Finds the vector files of these tests: next to the test assembly if copied there, else next to this source file.</summary>
internal static class VectorFiles
{
    public static string PathOf(string name, [CallerFilePath] string sourceFile = "")
    {
        string copied = Path.Combine(AppContext.BaseDirectory, "Translation", "Vectors", name);
        if (File.Exists(copied))
        {
            return copied;
        }

        return Path.Combine(Path.GetDirectoryName(sourceFile)!, "Vectors", name);
    }

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
