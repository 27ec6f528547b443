using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scorecard;

namespace S2Lab.Lab.Reports;

/// <summary>
/// The JSON form of a <see cref="LabReport"/>: one object with <c>scenario</c>, <c>scorecard</c> (one row per design
/// and variant, the six booleans), and <c>runs</c> (per-step results, expectations, and the evidence for each verdict).
/// </summary>
public static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // The errno converter comes first: the first converter that can convert a type wins, and the general enum
        // converter would otherwise write errnos in kebab case ("einval") instead of the kernel's names.
        Converters = { new ErrnoConverter(), new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public static string Render(LabReport report) => Build(report).ToJsonString(Options);

    /// <summary>The report as a JSON tree (tests read it back through this).</summary>
    public static JsonObject Build(LabReport report)
    {
        var root = new JsonObject
        {
            ["scenario"] = report.Scenario,
            ["description"] = report.Description,
            ["expectationsPassed"] = report.ExpectationsPassed,
            ["scorecard"] = new JsonArray(report.Scorecard.Select(Row).ToArray<JsonNode?>()),
            ["runs"] = new JsonArray(report.Runs.Select(Run).ToArray<JsonNode?>()),
        };
        return root;
    }

    private static JsonObject Row(ScorecardRow r)
    {
        var row = new JsonObject { ["design"] = r.Design, ["variant"] = r.Variant };
        foreach (var p in ScorecardRow.Properties)
            row[p.Json] = r.Holds(p);
        return row;
    }

    private static JsonObject Run(RunResult r)
    {
        var steps = new JsonArray();
        foreach (var s in r.Steps)
        {
            var node = JsonSerializer.SerializeToNode((object)s, Options)!.AsObject();
            // The step kind first, so that readers can dispatch on it.
            node.Remove("kind");
            node.Insert(0, "kind", s.Kind);
            steps.Add(node);
        }

        return new JsonObject
        {
            ["design"] = r.Design,
            ["variant"] = r.Variant,
            ["hosts"] = JsonSerializer.SerializeToNode(r.Hosts, Options),
            ["steps"] = steps,
            ["expectations"] = JsonSerializer.SerializeToNode(r.Expectations.Select(e => new
            {
                step = e.StepLabel,
                field = e.Field,
                expected = e.Expected,
                actual = e.Actual,
                passed = e.Passed,
                line = e.At.Line,
            }), Options),
            ["scorecard"] = Row(r.Scorecard),
            ["evidence"] = JsonSerializer.SerializeToNode(r.Scorecard.Evidence, Options),
        };
    }

    /// <summary>Errno as <see cref="LabText.Errno"/> writes it: the kernel's name ("EINVAL"), and "ok" for success.</summary>
    private sealed class ErrnoConverter : JsonConverter<Kernel.Kvm.Uapi.Errno>
    {
        public override Kernel.Kvm.Uapi.Errno Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            LabText.TryParseErrno(reader.GetString() ?? "", out var e) ? e : throw new JsonException($"'{reader.GetString()}' is not an errno name or ok");

        public override void Write(Utf8JsonWriter writer, Kernel.Kvm.Uapi.Errno value, JsonSerializerOptions options) =>
            writer.WriteStringValue(LabText.Errno(value));
    }
}
