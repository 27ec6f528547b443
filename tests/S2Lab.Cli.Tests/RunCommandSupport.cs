using System.CommandLine;

namespace S2Lab.Cli.Tests;

/// <summary>Runs <c>s2lab</c> in-process and captures its output (shared by the run/demo/explain tests).</summary>
internal static class CliRunner
{
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    public static string RepoFile(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "S2Lab.slnx")))
                return Path.Combine([dir.FullName, .. parts]);
        }

        throw new DirectoryNotFoundException("S2Lab.slnx not found above " + AppContext.BaseDirectory);
    }
}
