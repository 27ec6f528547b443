using System.CommandLine;
using S2Lab.Cli.Rendering;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Cli.Commands;

/// <summary><c>s2lab run FILE [--design DESIGN[:VARIANT]|all] [--format table|json|markdown]</c>: runs a scenario file.</summary>
internal static class RunCommand
{
    /// <summary>How many errors of an invalid file are printed (the count of all of them follows).</summary>
    internal const int MaxErrorsShown = 100;

    public static Command Create()
    {
        var cmd = new Command("run", "Run a scenario file (YAML or JSON, see docs/scenario-schema.md); its expect steps are checked.");
        var file = new Argument<string>("file") { Description = "The scenario file (.yaml, .yml or .json)." };
        var design = DesignOption();
        var format = FormatOption();
        var explain = ExplainOption();
        cmd.Arguments.Add(file);
        cmd.Options.Add(design);
        cmd.Options.Add(format);
        cmd.Options.Add(explain);
        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var path = parseResult.GetValue(file)!;
            Scenario scenario;
            try
            {
                scenario = ScenarioLoader.LoadFile(path);
            }
            catch (ScenarioException e)
            {
                // Every error is found; the first hundred are shown (a damaged file can have thousands).
                foreach (var err in e.Errors.Take(MaxErrorsShown))
                    error.WriteLine(err.ToString());
                if (e.Errors.Count > MaxErrorsShown)
                    error.WriteLine($"... and {e.Errors.Count - MaxErrorsShown} more");
                error.WriteLine($"s2lab run: {e.Errors.Count} error(s) in {path}; nothing was run");
                return ExitCodes.BadInput;
            }

            return Execute(scenario, parseResult.GetValue(design), parseResult.GetValue(format) ?? "table", parseResult.GetValue(explain), output, error, "run");
        });
        return cmd;
    }

    internal static Option<string> DesignOption() => new("--design")
    {
        Description = "Run every host under this design (" + string.Join(", ", DesignCatalog.Designs) +
                      ") with each of its variants, or one variant as DESIGN:VARIANT (proposal-module-param:param=on, " +
                      "proposal-memslot-flag:flag=prefer-migratable, linux-6.17:usemem=mixedmap where the scenario defines it), or 'all'.",
    };

    internal static Option<bool> ExplainOption() => new("--explain")
    {
        Description = "Table format: after each run, print the model's decision chain (with rule numbers) for every guest access.",
    };

    internal static Option<string> FormatOption() => OutputFormat.Create(OutputFormat.Table, OutputFormat.Json, OutputFormat.Markdown);

    /// <summary>Runs a validated scenario and renders it; shared with <c>s2lab demo</c>.</summary>
    internal static int Execute(Scenario scenario, string? design, string format, bool explain, TextWriter output, TextWriter error, string command)
    {
        if (format is not (OutputFormat.Table or OutputFormat.Json or OutputFormat.Markdown))
        {
            error.WriteLine($"s2lab {command}: --format must be table, json or markdown (got '{format}')");
            return ExitCodes.BadInput;
        }

        if (design is not null && DesignCatalog.ParseChoice(design, scenario.Variants, allowAll: true, out var designError) is null)
        {
            error.WriteLine($"s2lab {command}: --design: {designError}");
            return ExitCodes.BadInput;
        }

        LabReport report;
        try
        {
            report = ScenarioRunner.Run(scenario, design);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The model answers every call with an errno; an exception here is a bug in S2Lab, not in the scenario.
            error.WriteLine($"s2lab {command}: internal error while running '{scenario.Name}' (a bug in S2Lab, please report it):");
            error.WriteLine(e.ToString());
            return ExitCodes.InternalError;
        }

        switch (format)
        {
            case "json":
                output.WriteLine(JsonReport.Render(report));
                break;
            case "markdown":
                output.Write(MarkdownReport.Render(report));
                break;
            default:
                ReportTables.Write(ReportTables.ConsoleFor(output), report, ReportTables.WidthFor(output), explain: explain);
                break;
        }

        return report.ExpectationsPassed ? ExitCodes.Ok : ExitCodes.ExpectationFailed;
    }
}
