namespace S2Lab.Lab.Tests;

/// <summary>Paths in the repository (the tests run from bin/).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Scenarios => Path.Combine(Root, "scenarios");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "S2Lab.slnx")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException("S2Lab.slnx not found above " + AppContext.BaseDirectory);
    }
}
