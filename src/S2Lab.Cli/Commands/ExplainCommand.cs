using System.CommandLine;
using System.Globalization;
using S2Lab.Arch.Cpu;
using S2Lab.Cli.Rendering;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Runner;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab explain --host PRESET --design NAME --region KIND --s1 0xNN [--access read|write|exec]</c>: runs the model
/// for one region kind and prints the chain of decisions with rule numbers.
/// </summary>
internal static class ExplainCommand
{

    public static Command Create()
    {
        var cmd = new Command("explain", "Explain, rule by rule, what memory type a guest gets for one kind of region on one host and design.");
        var host = new Option<string>("--host") { Description = "CPU preset: " + string.Join(", ", CpuPresets.All.Select(p => p.Name)) + "." };
        var design = new Option<string>("--design") { Description = "Design: " + string.Join(", ", KvmDesigns.Names) + " (proposal-module-param=on|off)." };
        var region = new Option<string>("--region") { Description = "Region kind: " + string.Join(", ", Explainer.RegionKinds) + "." };
        var s1 = new Option<string>("--s1") { Description = "The guest's stage-1 MAIR attribute byte, e.g. 0xFF, 0x44, 0x04." };
        var access = new Option<string>("--access") { Description = "read (default), write or exec.", DefaultValueFactory = _ => "read" };
        var flag = new Option<bool>("--memslot-flag") { Description = "Set KVM_MEM_ENABLE_CACHEABLE_PFNMAP on the memslot (proposal-memslot-flag)." };
        foreach (var o in new Option[] { host, design, region, s1, access, flag })
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

            var h = parseResult.GetValue(host);
            var d = parseResult.GetValue(design);
            var r = parseResult.GetValue(region);
            var m = parseResult.GetValue(s1);
            var a = parseResult.GetValue(access) ?? "read";
            if (h is null || d is null || r is null || m is null)
                return Fail("--host, --design, --region and --s1 are required");
            if (CpuPresets.Find(h) is null)
                return Fail($"--host: unknown CPU preset '{h}'; known presets: {string.Join(", ", CpuPresets.All.Select(p => p.Name))}");
            if (KvmDesigns.TryCreate(d, out var designError) is null)
                return Fail($"--design: {designError}");
            if (!Explainer.RegionKinds.Contains(r))
                return Fail($"--region: unknown region kind '{r}'; known: {string.Join(", ", Explainer.RegionKinds)}");
            if (!CombineParsing.TryParseNumber(m.Trim(), 0xFF, out var mair))
                return Fail($"--s1: '{m}' is not a MAIR attribute byte (0x00 .. 0xFF)");
            if (a is not ("read" or "write" or "exec"))
                return Fail($"--access: '{a}' is not read, write or exec");

            var x = Explainer.Explain(h, d, r, mair, a, parseResult.GetValue(flag));
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
}
