using System.CommandLine;
using System.Globalization;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using S2Lab.Cli.Rendering;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab explain --host PRESET --design DESIGN[:VARIANT] --region KIND --s1 0xNN [--access read|write|exec] [--format table|json]</c>: runs the model
/// for one region kind and prints the chain of decisions with rule numbers.
/// </summary>
internal static class ExplainCommand
{

    public static Command Create()
    {
        var cmd = new Command("explain", "Explain, rule by rule, what memory type a guest gets for one kind of region on one host and design.");
        var host = new Option<string>("--host") { Description = "CPU preset: " + string.Join(", ", CpuPresets.All.Select(p => p.Name)) + "." };
        var design = new Option<string>("--design")
        {
            Description = "Design, or DESIGN:VARIANT as s2lab run takes it: " + string.Join(", ", DesignCatalog.Designs) +
                          " (e.g. proposal-module-param:param=on, proposal-memslot-flag:flag=prefer-migratable, linux-6.17:usemem=mixedmap).",
        };
        var region = new Option<string>("--region") { Description = "Region kind: " + string.Join(", ", Explainer.RegionKinds) + "." };
        var s1 = new Option<string>("--s1") { Description = "The guest's stage-1 MAIR attribute byte, e.g. 0xFF, 0x44, 0x04." };
        var access = new Option<string>("--access") { Description = "read (default), write or exec.", DefaultValueFactory = _ => "read" };
        var format = OutputFormat.Create(OutputFormat.Table, OutputFormat.Json);
        foreach (var o in new Option[] { host, design, region, s1, access, format })
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;

            int Fail(string message)
            {
                error.WriteLine($"s2lab explain: {message}");
                return ExitCodes.BadInput;
            }

            if (OutputFormat.Get(parseResult, format, error, "explain", OutputFormat.Table, OutputFormat.Json) is not { } fmt)
                return ExitCodes.BadInput;
            var h = parseResult.GetValue(host);
            var d = parseResult.GetValue(design);
            var r = parseResult.GetValue(region);
            var m = parseResult.GetValue(s1);
            var a = parseResult.GetValue(access) ?? "read";
            if (h is null || d is null || r is null || m is null)
                return Fail("--host, --design, --region and --s1 are required");
            if (CpuPresets.Find(h) is null)
                return Fail($"--host: unknown CPU preset '{h}'; known presets: {string.Join(", ", CpuPresets.All.Select(p => p.Name))}");
            if (DesignCatalog.ParseChoice(d, DesignCatalog.ExplainVariants, allowAll: false, out var designError) is null)
                return Fail($"--design: {designError}");
            if (!Explainer.RegionKinds.Contains(r))
                return Fail($"--region: unknown region kind '{r}'; known: {string.Join(", ", Explainer.RegionKinds)}");
            if (!CombineParsing.TryParseNumber(m.Trim(), 0xFF, out var mair))
                return Fail($"--s1: '{m}' is not a MAIR attribute byte (0x00 .. 0xFF)");
            if (a is not ("read" or "write" or "exec"))
                return Fail($"--access: '{a}' is not read, write or exec");

            var x = Explainer.Explain(h, d, r, mair, a);
            if (fmt == OutputFormat.Json)
            {
                output.WriteLine(ToJson(x));
                return 0;
            }

            var text = new System.Text.StringBuilder();
            text.AppendLine($"{x.RegionKind} on {x.Host} under {x.Design}: guest {x.Access} with stage-1 MAIR 0x{x.Mair:X2}");
            foreach (var line in x.Lines)
                text.AppendLine($"  {line}");
            text.AppendLine($"outcome:    {x.Outcome}");
            text.AppendLine($"stage 2:    {x.Stage2}");
            text.AppendLine($"guest sees: {x.Effective}");
            text.AppendLine($"hazards:    {(x.Hazards.Count == 0 ? "none" : string.Join("; ", x.Hazards))}");
            ReportTables.WriteWrapped(output, text.ToString(), ReportTables.WidthFor(output));
            return 0;
        });
        return cmd;
    }

    /// <summary>The JSON form: the inputs, every decision (stage, rule, text) and the result.</summary>
    internal static string ToJson(Explanation x)
    {
        using var stream = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions
        {
            Indented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            w.WriteStartObject();
            w.WriteString("host", x.Host);
            w.WriteString("design", x.Design);
            w.WriteString("region", x.RegionKind);
            w.WriteString("mair", $"0x{x.Mair:X2}");
            w.WriteString("access", x.Access);
            w.WriteStartArray("decisions");
            foreach (var l in x.Lines)
            {
                w.WriteStartObject();
                w.WriteString("stage", l.Stage);
                if (l.Rule > 0)
                    w.WriteNumber("rule", l.Rule);
                else
                    w.WriteNull("rule");
                w.WriteString("text", l.Text);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("outcome", x.Outcome);
            w.WriteString("stage2", x.Stage2);
            w.WriteString("effective", x.Effective);
            w.WriteStartArray("hazards");
            foreach (var hz in x.Hazards)
                w.WriteStringValue(hz);
            w.WriteEndArray();
            w.WriteStartArray("events");
            foreach (var e in x.Events)
                WriteEvent(w, e);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>One kernel event, the chain the decisions above are built from: its kind and its typed fields.</summary>
    private static void WriteEvent(System.Text.Json.Utf8JsonWriter w, KernelEvent e)
    {
        w.WriteStartObject();
        w.WriteNumber("seq", e.Seq);
        switch (e)
        {
            case MemslotDecided m:
                w.WriteString("event", "memslot-decided");
                w.WriteNumber("slot", m.Slot);
                w.WriteString("change", m.Change?.ToString());
                w.WriteString("flags", m.Flags.ToString());
                w.WriteString("gpa", $"0x{m.Gpa:x}");
                w.WriteString("size", $"0x{m.Size:x}");
                w.WriteString("errno", m.Result.ToString());
                w.WriteNumber("rule", m.Rule);
                w.WriteString("reason", m.Reason);
                break;
            case FaultDecided f:
                w.WriteString("event", "fault-decided");
                w.WriteString("ipa", $"0x{f.Ipa:x}");
                w.WriteString("access", AccessWord(f.Access));
                w.WriteString("stage", f.Stage.ToString());
                w.WriteNumber("rule", f.Rule);
                w.WriteString("reason", f.Reason);
                break;
            case Stage2Written s:
                w.WriteString("event", "stage2-written");
                w.WriteString("kind", s.Kind.ToString());
                w.WriteString("ipa", $"0x{s.Ipa:x}");
                w.WriteString("size", $"0x{s.Size:x}");
                w.WriteString("leaf", s.Leaf?.ToString());
                w.WriteBoolean("fwb", s.Fwb);
                break;
            case CmoRequired c:
                w.WriteString("event", "cmo-required");
                // The event's words from before CacheOp (the JSON is a contract).
                w.WriteString("op", c.Op == CacheOp.IcIvau ? "IcacheInvalidatePou" : "DcacheCleanInvalidatePoc");
                w.WriteString("pa", $"0x{c.Pa:x}");
                w.WriteString("size", $"0x{c.Size:x}");
                w.WriteBoolean("needed", c.Needed);
                w.WriteBoolean("possible", c.Possible);
                w.WriteString("reason", c.Reason);
                break;
            case MemoryAccessed a:
                w.WriteString("event", "memory-accessed");
                w.WriteString("agent", a.Agent);
                w.WriteString("access", AccessWord(a.Access));
                w.WriteString("ipa", $"0x{a.Ipa:x}");
                w.WriteString("pa", $"0x{a.Pa:x}");
                w.WriteString("effective", a.Effective?.ToString());
                break;
            case AccessEnded a:
                w.WriteString("event", "access-ended");
                w.WriteString("access", AccessWord(a.Access));
                w.WriteString("ipa", $"0x{a.Ipa:x}");
                w.WriteString("outcome", a.Outcome.ToString());
                w.WriteString("errno", a.RunError.ToString());
                break;
        }
        w.WriteEndObject();
    }

    /// <summary>The access as the command line names it: read, write or exec (the <c>--access</c> words).</summary>
    private static string AccessWord(S2AccessKind kind) => kind switch
    {
        S2AccessKind.Read => "read",
        S2AccessKind.Write => "write",
        _ => "exec",
    };
}
