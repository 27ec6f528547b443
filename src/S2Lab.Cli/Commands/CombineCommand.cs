using System.CommandLine;
using System.Text.Json;
using S2Lab.Arch.Attributes;
using S2Lab.Cli.Rendering;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab combine</c>: the effective memory type of stage-1 and stage-2 attributes (one input, a CSV batch, or the
/// table of Linux's stage-1 types against KVM's stage-2 types).
/// </summary>
internal static class CombineCommand
{

    public static Command Create()
    {
        var cmd = new Command("combine", "Combine stage-1 and stage-2 memory attributes into the effective type (Arm rules, FWB=0 and FWB=1).");

        Option<string> Opt(string name, string description)
        {
            // Arity 0..1: a missing value is reported by this command (exit 2), not as a parser error.
            var o = new Option<string>(name) { Description = description, Arity = ArgumentArity.ZeroOrOne };
            cmd.Options.Add(o);
            return o;
        }

        var fwb = Opt("--fwb", "HCR_EL2.FWB: 0 or 1.");
        var s1 = Opt("--s1", "Stage-1 MAIR attribute byte, e.g. 0xFF, 0x44, 0x04.");
        var s2 = Opt("--s2", "Stage-2 MemAttr[3:0] (descriptor bits [5:2]), e.g. 0b0110 or 0xF.");
        var s1Sh = Opt("--s1-sh", "Stage-1 SH: NSH, ISH or OSH (default ISH).");
        var s2Sh = Opt("--s2-sh", "Stage-2 SH: NSH, ISH or OSH (default ISH).");
        var cd = Opt("--cd", "HCR_EL2.CD: 0 or 1 (default 0).");
        var id = Opt("--id", "HCR_EL2.ID: 0 or 1 (default 0).");
        var dc = Opt("--dc", "HCR_EL2.DC: 0 or 1 (default 0); stage 1 then outputs Normal WB, NSH.");
        var dct = Opt("--dct", "HCR_EL2.DCT: 0 or 1 (default 0); with --dc 1 the default attribute is Tagged.");
        var mmu = Opt("--s1-mmu", "SCTLR_EL1.M: 0 or 1 (default 1); 0 turns stage 1 off.");
        var sctlrC = Opt("--sctlr-c", "SCTLR_EL1.C: 0 or 1 (default 1).");
        var sctlrI = Opt("--sctlr-i", "SCTLR_EL1.I: 0 or 1 (default 1).");
        var access = Opt("--access", "data or ifetch (default data).");
        var features = Opt("--features", "CPU features, comma-separated: mte2, xs, mte-perm, none (default mte2).");
        var batch = Opt("--batch", "CSV file (or - for standard input) with header fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh.");
        var format = OutputFormat.Create(OutputFormat.Table, OutputFormat.Json);
        format.Description += " For the single mode and --table; --batch writes CSV.";
        var table = new Option<bool>("--table") { Description = "Print Linux's stage-1 types against KVM's stage-2 types, FWB=0 and FWB=1." };
        cmd.Options.Add(format);
        cmd.Options.Add(table);

        cmd.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;

            int Fail(string message)
            {
                error.WriteLine($"s2lab combine: {message}");
                return ExitCodes.BadInput;
            }

            // An option given without a value: Option<string> with arity 0..1 yields null, so look for the token.
            foreach (var o in new[] { fwb, s1, s2, s1Sh, s2Sh, cd, id, dc, dct, mmu, sctlrC, sctlrI, access, features, batch })
            {
                if (parseResult.GetResult(o) is { Implicit: false } r && r.Tokens.Count == 0)
                {
                    return Fail($"{o.Name} needs a value");
                }
            }

            var featureSet = AttributeFeatures.Mte2;
            if (parseResult.GetValue(features) is { } featureText
                && !CombineParsing.TryParseFeatures(featureText, out featureSet, out var badFeature))
            {
                return Fail($"--features: unknown feature '{badFeature}' (known: mte2, xs, mte-perm, none)");
            }

            if (OutputFormat.Get(parseResult, format, error, "combine", OutputFormat.Table, OutputFormat.Json) is not { } fmt)
                return ExitCodes.BadInput;
            var asJson = fmt == OutputFormat.Json;
            var modes = (parseResult.GetValue(table) ? 1 : 0) + (parseResult.GetValue(batch) is not null ? 1 : 0);
            var singleOptions = new[] { fwb, s1, s2, s1Sh, s2Sh, cd, id, dc, dct, mmu, sctlrC, sctlrI, access }
                .Where(o => parseResult.GetValue(o) is not null).Select(o => o.Name).ToList();
            if (modes > 1 || (modes == 1 && singleOptions.Count > 0))
            {
                return Fail("use one mode: single (--fwb --s1 --s2 ...), --batch FILE, or --table");
            }

            if (parseResult.GetValue(table))
            {
                WriteTable(output, featureSet, asJson);
                return 0;
            }

            if (parseResult.GetValue(batch) is { } file)
            {
                return asJson ? Fail("--batch reads and writes CSV; --format json is for the single mode and --table") : RunBatch(file, output, error, featureSet);
            }

            // Single mode.
            if (parseResult.GetValue(fwb) is null || parseResult.GetValue(s1) is null || parseResult.GetValue(s2) is null)
            {
                return Fail("single mode needs --fwb 0|1, --s1 <MAIR byte> and --s2 <MemAttr> (or use --batch FILE or --table)");
            }

            string? problem = null;
            bool Bit(Option<string> o, bool fallback)
            {
                var text = parseResult.GetValue(o);
                if (text is null)
                {
                    return fallback;
                }

                if (!CombineParsing.TryParseBit(text, out var v))
                {
                    problem ??= $"{o.Name}: expected 0 or 1, got '{text}'";
                }

                return v;
            }

            Shareability Sh(Option<string> o)
            {
                var text = parseResult.GetValue(o);
                if (text is null)
                {
                    return Shareability.ISH;
                }

                if (!ShareabilityRules.TryParse(text, out var v))
                {
                    problem ??= $"{o.Name}: expected NSH, ISH or OSH, got '{text}'";
                }

                return v;
            }

            var s1Text = parseResult.GetValue(s1)!;
            if (!CombineParsing.TryParseNumber(s1Text, 0xFF, out var s1Attr))
            {
                problem ??= $"--s1: expected a MAIR byte (0x00..0xFF), got '{s1Text}'";
            }

            var s2Text = parseResult.GetValue(s2)!;
            if (!CombineParsing.TryParseNumber(s2Text, 0xF, out var s2Attr))
            {
                problem ??= $"--s2: expected a 4-bit MemAttr (0b0000..0b1111), got '{s2Text}'";
            }

            var accessText = parseResult.GetValue(access) ?? "data";
            var accessKind = AccessKind.Data;
            if (accessText.Equals("ifetch", StringComparison.OrdinalIgnoreCase))
            {
                accessKind = AccessKind.InstructionFetch;
            }
            else if (!accessText.Equals("data", StringComparison.OrdinalIgnoreCase))
            {
                problem ??= $"--access: expected data or ifetch, got '{accessText}'";
            }

            var input = new CombineInput(s1Attr, Sh(s1Sh), s2Attr, Sh(s2Sh), Bit(fwb, false), Bit(cd, false))
            {
                HcrId = Bit(id, false),
                HcrDc = Bit(dc, false),
                HcrDct = Bit(dct, false),
                SctlrM = Bit(mmu, true),
                SctlrC = Bit(sctlrC, true),
                SctlrI = Bit(sctlrI, true),
                Access = accessKind,
                Features = featureSet,
            };
            if (problem is not null)
            {
                return Fail(problem);
            }

            var explanation = AttributeCombiner.Explain(input);
            if (asJson)
            {
                WriteJson(output, input, explanation);
            }
            else
            {
                WriteText(output, input, explanation);
            }

            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// A regular file is read twice: checked whole, then combined, so that a malformed row produces no output. Standard
    /// input and pipes are combined in one pass; on a malformed row the rows before it have been written, and the
    /// message says how many.
    /// </summary>
    private static int RunBatch(string file, TextWriter output, TextWriter error, AttributeFeatures features)
    {
        var name = file == "-" ? "<stdin>" : file;
        Stream? stream = null;
        try
        {
            stream = file == "-" ? null : new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error.WriteLine($"s2lab combine: {name}: cannot open: {e.Message}");
            return ExitCodes.BadInput;
        }

        using (stream)
        {
            CombineBatch.BatchError? err;
            long written;
            try
            {
                if (stream is { CanSeek: true })
                {
                    err = CombineBatch.Validate(new StreamReader(stream, leaveOpen: true));
                    if (err is not null)
                        return Report(err, 0);
                    stream.Seek(0, SeekOrigin.Begin);
                }

                var reader = stream is null ? Console.In : new StreamReader(stream, leaveOpen: true);
                err = CombineBatch.Run(reader, output, features, out written);
            }
            catch (IOException e)
            {
                error.WriteLine($"s2lab combine: {name}: cannot read: {e.Message}");
                return ExitCodes.BadInput;
            }

            return err is null ? ExitCodes.Ok : Report(err, written);
        }

        int Report(CombineBatch.BatchError err, long written)
        {
            var field = err.Field is null ? "" : $" field '{err.Field}':";
            var partial = written > 0 ? $" (the {written} row(s) before it were written)" : "";
            error.WriteLine($"s2lab combine: {name}:{err.Line}:{field} {err.Message}{partial}");
            return ExitCodes.BadInput;
        }
    }

    private static void WriteText(TextWriter output, in CombineInput input, CombineExplanation e)
    {
        var r = e.Result;
        var text = new System.Text.StringBuilder();
        text.AppendLine($"effective   0x{r.ParAttr:X2}  {r.Description}  {r.Shareability}");
        text.AppendLine($"class       {Classify(r)}");
        text.AppendLine($"inputs      FWB={(input.Fwb ? 1 : 0)} HCR_EL2.CD={(input.HcrCd ? 1 : 0)}  S1 0x{input.S1Attr:X2} {input.S1Sh}  S2 {Stage2MemAttr.Format(input.S2MemAttr)} {input.S2Sh}");
        if (r.Diagnostics != CombineDiagnostics.None)
            text.AppendLine($"note        reserved/UNPREDICTABLE input resolved by a documented choice: {r.Diagnostics}");
        text.AppendLine("why");
        for (var i = 0; i < e.Steps.Count; i++)
            text.AppendLine($"  {i + 1,2}. {e.Steps[i].Text}");
        ReportTables.WriteWrapped(output, text.ToString(), ReportTables.WidthFor(output), hanging: 4);
    }

    private static string Classify(in CombineResult r) =>
        (r.IsDevice ? "Device" : r.IsWriteBackCacheable ? "Normal write-back cacheable" : r.IsNonCacheable ? "Normal non-cacheable" : "Normal partly cacheable")
        + (r.IsTagged ? ", tagged" : "") + (r.NoTagAccess ? ", NoTagAccess" : "");

    private static void WriteJson(TextWriter output, in CombineInput input, CombineExplanation e)
    {
        var r = e.Result;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("attr", $"0x{r.ParAttr:X2}");
            w.WriteString("sh", r.Shareability.ToString());
            w.WriteString("type", r.Description);
            w.WriteBoolean("device", r.IsDevice);
            w.WriteBoolean("writeBackCacheable", r.IsWriteBackCacheable);
            w.WriteBoolean("nonCacheable", r.IsNonCacheable);
            w.WriteBoolean("tagged", r.IsTagged);
            w.WriteBoolean("noTagAccess", r.NoTagAccess);
            w.WriteString("diagnostics", r.Diagnostics.ToString());
            w.WriteStartObject("input");
            w.WriteNumber("fwb", input.Fwb ? 1 : 0);
            w.WriteNumber("hcr_cd", input.HcrCd ? 1 : 0);
            w.WriteString("s1_mair", $"0x{input.S1Attr:X2}");
            w.WriteString("s1_sh", input.S1Sh.ToString());
            w.WriteString("s2_memattr", Stage2MemAttr.Format(input.S2MemAttr));
            w.WriteString("s2_sh", input.S2Sh.ToString());
            w.WriteEndObject();
            w.WriteStartArray("explanation");
            foreach (var step in e.Steps)
            {
                w.WriteStartObject();
                w.WriteString("kind", step.Kind.ToString());
                w.WriteString("text", step.Text);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static void WriteTable(TextWriter output, AttributeFeatures features, bool asJson)
    {
        var mte = (features & AttributeFeatures.Mte2) != 0;
        var cells = CombineTable.LinuxVsKvm(mte);
        if (asJson)
        {
            WriteTableJson(output, cells, mte);
            return;
        }

        var width = ReportTables.WidthFor(output);
        var columns = cells.Where(c => c.S1Name == cells[0].S1Name).ToList();
        var grid = new TextTable(["stage 1", .. columns.Select(c => $"FWB={(c.Fwb ? 1 : 0)} {c.S2Name} ({Stage2MemAttr.Format(c.S2MemAttr)})")]);
        foreach (var row in cells.GroupBy(c => c.S1Name))
        {
            var first = row.First();
            grid.AddRow([$"{first.S1Name} (0x{first.S1Attr:X2})", .. row.Select(c => new Cell($"0x{c.Result.ParAttr:X2} {c.Result.Description} {c.Result.Shareability}"))]);
        }

        var title = $"Effective memory type: Linux stage 1 (MAIR_EL1 0x{LinuxMair.MairEl1For(mte):X16}) over KVM stage 2 (S1 and S2 SH = ISH)";
        foreach (var line in TextWrap.Wrap(title, width).Concat(grid.RenderPlain(width)))
            output.WriteLine(line);
    }

    /// <summary>The table as JSON: MAIR_EL1, then one object per stage-1 type and stage-2 type with the effective result.</summary>
    private static void WriteTableJson(TextWriter output, IReadOnlyList<CombineTableCell> cells, bool mte)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("mair_el1", $"0x{LinuxMair.MairEl1For(mte):X16}");
            w.WriteStartArray("cells");
            foreach (var c in cells)
            {
                w.WriteStartObject();
                w.WriteString("s1", c.S1Name);
                w.WriteString("s1_mair", $"0x{c.S1Attr:X2}");
                w.WriteNumber("fwb", c.Fwb ? 1 : 0);
                w.WriteString("s2", c.S2Name);
                w.WriteString("s2_memattr", Stage2MemAttr.Format(c.S2MemAttr));
                w.WriteString("attr", $"0x{c.Result.ParAttr:X2}");
                w.WriteString("type", c.Result.Description);
                w.WriteString("sh", c.Result.Shareability.ToString());
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
