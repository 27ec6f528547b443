using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Cli.Commands;

/// <summary>
/// <c>s2lab oracle</c>: the C# half of the arm64 KVM oracle (oracle/arm64/oracle.sh). <c>ops</c> writes the seeded
/// operations the probe runs, <c>record</c> turns the probe's console answers into a transcript, <c>check</c> replays
/// transcripts on the model and prints every difference.
/// </summary>
internal static class OracleCommand
{
    private const string AnswerPrefix = "@@S2A ";
    private const string HeaderPrefix = "@@S2H ";

    public static Command Create()
    {
        var seed = new Option<int>("--seed") { Description = "Generator seed.", DefaultValueFactory = _ => 1 };
        var count = new Option<int>("--count") { Description = "At least this many operations (whole episodes).", DefaultValueFactory = _ => 2500 };
        var ops = new Command("ops", "Write the oracle's generated operations (replay lines without answers) to standard output.") { seed, count };
        ops.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            foreach (var op in Arm64OracleOps.Generate(parse.GetValue(seed), parse.GetValue(count)))
                output.WriteLine(ReplayWriter.Format(op));
            return ExitCodes.Ok;
        });

        var opsFile = new Option<FileInfo>("--ops") { Description = "The operations file the probe ran.", Required = true };
        var console = new Option<FileInfo>("--console") { Description = "The guest's console log (@@S2H / @@S2A lines).", Required = true };
        var qemu = new Option<string>("--qemu") { Description = "QEMU version, for the header.", Required = true };
        var cpu = new Option<string>("--cpu") { Description = "The -cpu argument, for the header.", Required = true };
        var recordSeed = new Option<int>("--seed") { Description = "The seed the operations were generated with.", Required = true };
        var record = new Command("record", "Merge operations and the probe's answers into a transcript (standard output).")
        {
            opsFile, console, qemu, cpu, recordSeed,
        };
        record.SetAction(parse =>
        {
            var cfg = parse.InvocationConfiguration;
            return Record(parse.GetValue(opsFile)!, parse.GetValue(console)!, parse.GetValue(qemu)!, parse.GetValue(cpu)!,
                parse.GetValue(recordSeed), cfg.Output, cfg.Error);
        });

        var files = new Argument<FileInfo[]>("TRANSCRIPT") { Description = "Oracle transcripts (#@ header, replay lines with answers).", Arity = ArgumentArity.OneOrMore };
        var check = new Command("check", "Replay oracle transcripts on the model of the recorded machine; print every difference.") { files };
        check.SetAction(parse =>
        {
            var cfg = parse.InvocationConfiguration;
            return Check(parse.GetValue(files)!, cfg.Output, cfg.Error);
        });
        return new Command("oracle", "The arm64 KVM oracle (oracle/arm64): generate operations, record and check transcripts.") { ops, record, check };
    }

    internal static int Record(FileInfo opsFile, FileInfo console, string qemu, string cpu, int seed, TextWriter stdout, TextWriter stderr)
    {
        var (parsed, error) = ReplayParser.ParseFile(opsFile.FullName);
        if (error is not null)
        {
            stderr.WriteLine($"s2lab oracle record: {error}");
            return ExitCodes.BadInput;
        }
        string[] lines;
        try
        {
            lines = File.ReadAllLines(console.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"s2lab oracle record: {console}: cannot read the file: {e.Message}");
            return ExitCodes.BadInput;
        }
        var headerLine = lines.Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(HeaderPrefix, StringComparison.Ordinal));
        if (headerLine is null)
        {
            stderr.WriteLine($"s2lab oracle record: {console}: no {HeaderPrefix.Trim()} line (did the probe start?)");
            return ExitCodes.BadInput;
        }
        OracleHeader header;
        try
        {
            using var doc = JsonDocument.Parse(headerLine[HeaderPrefix.Length..]);
            var r = doc.RootElement;
            var kernel = r.GetProperty("kernel").GetString()!;
            header = new OracleHeader(kernel, qemu, cpu, seed,
                ulong.Parse(r.GetProperty("ctr_el0").GetString()!.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture),
                r.GetProperty("fwb").GetBoolean(), r.GetProperty("vhe").GetBoolean(), r.GetProperty("ipa_limit").GetInt32(),
                OracleHeader.DesignFor(kernel), Mte: r.GetProperty("mte").GetInt32() > 0);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            stderr.WriteLine($"s2lab oracle record: {console}: malformed {HeaderPrefix.Trim()} line: {e.Message}");
            return ExitCodes.BadInput;
        }

        var answers = new Dictionary<int, JsonElement>();
        foreach (var raw in lines)
        {
            var l = raw.TrimEnd('\r');
            var at = l.IndexOf(AnswerPrefix, StringComparison.Ordinal);
            if (at < 0)
                continue;
            try
            {
                // An answer is a flat object; kernel messages may follow it on the same console line.
                var body = l[(at + AnswerPrefix.Length)..];
                var close = body.IndexOf('}', StringComparison.Ordinal);
                var el = JsonDocument.Parse(close < 0 ? body : body[..(close + 1)]).RootElement;
                answers[el.GetProperty("i").GetInt32()] = el;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                stderr.WriteLine($"s2lab oracle record: {console}: malformed answer '{l}': {e.Message}");
                return ExitCodes.BadInput;
            }
        }
        var ops = parsed!.Ops;
        if (answers.Count != ops.Count)
        {
            stderr.WriteLine($"s2lab oracle record: {console}: {answers.Count} answer(s) for {ops.Count} operation(s) (the run stopped early?)");
            return ExitCodes.BadInput;
        }
        stdout.WriteLine($"# arm64 KVM oracle transcript: Linux {header.Kernel} under QEMU {header.Qemu} -cpu {header.Cpu}, seed {seed}.");
        stdout.WriteLine("# Regenerate with oracle/arm64/oracle.sh; replayed by tests/S2Lab.Lab.Tests/Arm64OracleTranscriptTests.");
        stdout.WriteLine(OracleHeader.Prefix + header.ToJson());
        for (var i = 0; i < ops.Count; i++)
        {
            var a = answers[i + 1];
            if (!ErrnoText.TryParse(a.GetProperty("r").GetString()!, out var errno))
            {
                stderr.WriteLine($"s2lab oracle record: answer {i + 1}: unknown errno '{a.GetProperty("r").GetString()}'");
                return ExitCodes.BadInput;
            }
            long? value = a.TryGetProperty("value", out var v) ? v.GetInt64() : null;
            var exit = a.TryGetProperty("exit", out var x) ? x.GetString() : null;
            var leaf = a.TryGetProperty("leaf", out var lf) ? lf.GetString() : null;
            stdout.WriteLine(ReplayWriter.Format(ops[i], errno, new ReplayStep(ops[i], errno, value, exit, leaf)));
        }
        return ExitCodes.Ok;
    }

    internal static int Check(FileInfo[] files, TextWriter stdout, TextWriter stderr)
    {
        var total = 0;
        foreach (var f in files)
        {
            var header = OracleHeader.TryRead(f.FullName, out var error);
            var (parsed, parseError) = header is null ? (null, null) : ReplayParser.ParseFile(f.FullName);
            if (header is null || parseError is not null)
            {
                stderr.WriteLine($"s2lab oracle check: {error ?? parseError!.ToString()}");
                return ExitCodes.BadInput;
            }
            var differences = OracleTranscript.Differences(header, parsed!);
            total += differences.Count;
            stdout.WriteLine($"{f.Name}: Linux {header.Kernel}, -cpu {header.Cpu}, {header.Design}: {parsed!.Ops.Count} ops, {differences.Count} difference(s)");
            foreach (var d in differences.Take(20))
                stdout.WriteLine("  " + d);
        }
        return total == 0 ? ExitCodes.Ok : ExitCodes.ExpectationFailed;
    }
}
