using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using S2Lab.Cli.Bench;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab bench</c>: quick measurements without BenchmarkDotNet (a warm-up by <see cref="WarmupRule"/>, a few timed
/// iterations, best time). The measurements are the <see cref="IQuickBench"/> classes in src/S2Lab.Cli/Bench/;
/// <c>--scale</c> adds the large runs; <c>--readme</c> prints the README's performance table (<see cref="ReadmeFigures"/>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var json = OutputFormat.Create(OutputFormat.Table, OutputFormat.Json); // json: an array of {"name","value","unit"}
        var scale = new Option<bool>("--scale") { Description = "Also run the scale measurements (a fresh 64 GiB map, the 480+96 GiB and 4 TiB migrations, half of a 64 GiB VM written; minutes, up to about 3 GiB of memory)." };
        var scaleOnly = new Option<bool>("--scale-only") { Description = "Run only the scale measurements." };
        var filter = new Option<string?>("--filter") { Description = "Only measurements whose name contains this text." };
        var iterations = new Option<int>("--iterations") { Description = "Timed iterations per measurement (best is reported).", DefaultValueFactory = _ => 5 };
        var list = new Option<bool>("--list") { Description = "List the measurements and exit." };
        var readme = new Option<bool>("--readme") { Description = "Run the measurements behind the README's performance table and print it in Markdown." };
        var cmd = new Command("bench", "Quick performance measurements of the model (stage-2 tables, TLB, walks, ...).")
        {
            json, scale, scaleOnly, filter, iterations, list, readme,
        };
        cmd.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            int iters = parse.GetValue(iterations);
            if (iters < 1)
            {
                error.WriteLine("s2lab bench: --iterations must be at least 1");
                return ExitCodes.BadInput;
            }

            if (parse.GetValue(readme))
            {
                return ReadmeFigures.Run(output, error, new BenchSettings(iters, Warmup: 2));
            }

            bool withScale = parse.GetValue(scale) || parse.GetValue(scaleOnly);
            bool onlyScale = parse.GetValue(scaleOnly);
            string? f = parse.GetValue(filter);
            var selected = QuickBenchRegistry.All
                .Where(b => b.Kind == BenchKind.Quick ? !onlyScale : withScale)
                .Where(b => f is null || b.Name.Contains(f, StringComparison.OrdinalIgnoreCase))
                .ToList();
            if (parse.GetValue(list))
            {
                foreach (var b in QuickBenchRegistry.All)
                {
                    output.WriteLine($"{b.Name}{(b.Kind == BenchKind.Scale ? " (--scale)" : "")}");
                }

                return 0;
            }

            if (selected.Count == 0)
            {
                error.WriteLine($"s2lab bench: no measurement matches '{f}' (see --list)");
                return ExitCodes.BadInput;
            }

            var settings = new BenchSettings(iters, Warmup: 2);
            if (OutputFormat.Get(parse, json, error, "bench", OutputFormat.Table, OutputFormat.Json) is not { } fmt)
                return ExitCodes.BadInput;
            bool asJson = fmt == OutputFormat.Json;
            var results = new List<BenchResult>();
            foreach (var b in selected)
            {
                foreach (var r in b.Run(settings))
                {
                    results.Add(r);
                    if (!asJson)
                    {
                        output.WriteLine($"{r.Name,-34} {Format(r.Value),16} {r.Unit}");
                    }
                }
            }

            if (asJson)
            {
                output.WriteLine(ToJson(results));
            }

            return 0;
        });
        return cmd;
    }

    private static string Format(double v) =>
        Math.Abs(v) >= 1000 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>The JSON form: an array of {"name","value","unit"}.</summary>
    internal static string ToJson(IEnumerable<BenchResult> results)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteNumber("value", Math.Round(r.Value, 3));
                w.WriteString("unit", r.Unit);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
