using System.CommandLine;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab demo</c>: the embedded scenarios/demo.yaml (Grace and Altra, a GH200 through nvgrace-gpu, one VM started
/// on each host and migrated both ways) under every design and variant, then the scorecard.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the embedded default scenario: the March 2025 debate, every design, two hosts, then the scorecard.");
        var format = RunCommand.FormatOption();
        var design = RunCommand.DesignOption();
        design.DefaultValueFactory = _ => "all";
        var explain = RunCommand.ExplainOption();
        cmd.Options.Add(format);
        cmd.Options.Add(design);
        cmd.Options.Add(explain);
        cmd.SetAction(parseResult =>
        {
            var scenario = DemoScenario.Load();
            return RunCommand.Execute(scenario, parseResult.GetValue(design), parseResult.GetValue(format) ?? "table", parseResult.GetValue(explain),
                parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error, "demo");
        });
        return cmd;
    }
}
