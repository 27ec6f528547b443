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

    /// <summary>
    /// The table output of a scenario (null: the demo) run under <paramref name="design"/>, rendered at
    /// <paramref name="width"/> columns, as <c>s2lab run</c> prints it on a terminal of that width.
    /// </summary>
    public static string Table(string? scenarioFile, string? design, int width)
    {
        var scenario = scenarioFile is null ? S2Lab.Lab.Scenarios.DemoScenario.Load() : S2Lab.Lab.Scenarios.ScenarioLoader.LoadFile(scenarioFile);
        var report = S2Lab.Lab.Runner.ScenarioRunner.Run(scenario, design);
        var output = new StringWriter();
        Rendering.ReportTables.Write(Rendering.ReportTables.ConsoleFor(output), report, width);
        return output.ToString();
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
