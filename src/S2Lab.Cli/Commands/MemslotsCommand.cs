using System.CommandLine;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;
using S2Lab.Lab.Scenarios;
using S2Lab.Linux;

namespace S2Lab.Cli.Commands;

/// <summary><c>s2lab memslots replay FILE</c>: runs a memslot replay file on the model or on the real kernel.</summary>
internal static class MemslotsCommand
{
    public const string DefaultDesign = ModelBackend.DefaultDesign;

    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "The replay file: JSON lines, one operation each (create_vm, create_gmem, set, cap, mmap, munmap, vcpu, access; docs/replay-format.md)." };
        var backend = new Option<string>("--backend") { Description = "Where to run: the S2Lab model, or the real /dev/kvm.", DefaultValueFactory = _ => "model" };
        backend.AcceptOnlyFromAmong("model", "kernel");
        var profile = new Option<string?>("--profile") { Description = "The architecture profile (arm64 | x86_64). Default: the machine's architecture for the kernel backend, arm64 for the model." };
        profile.AcceptOnlyFromAmong("arm64", "x86_64");
        var hostProfile = new Option<FileInfo?>("--host-profile") { Description = "Model backend: take the memslot limits (user slots, address spaces, guest_memfd, x86 GPA limit) from a host profile written by 's2lab probe'." };
        var design = new Option<string>("--design")
        {
            Description = "The model's kernel design (model backend only), as s2lab run takes it: DESIGN or DESIGN:VARIANT (proposal-module-param:param=on).",
            DefaultValueFactory = _ => DefaultDesign,
        };
        var format = OutputFormat.Create(OutputFormat.Table, OutputFormat.Json);
        format.Description += " json: an array of {line, op, result, expect, matches}.";
        var replay = new Command("replay", "Run a memslot replay file and print one result per operation: 0, or the errno name.")
        {
            file, backend, profile, design, hostProfile, format,
        };
        replay.SetAction(parse =>
        {
            var cfg = parse.InvocationConfiguration;
            if (OutputFormat.Get(parse, format, cfg.Error, "memslots replay", OutputFormat.Table, OutputFormat.Json) is not { } fmt)
                return ExitCodes.BadInput;
            return Replay(parse.GetValue(file)!, parse.GetValue(backend)!, parse.GetValue(profile), parse.GetValue(design)!, cfg.Output, cfg.Error,
                parse.GetValue(hostProfile), fmt == OutputFormat.Json);
        });
        return new Command("memslots", "Memslot tools: replay KVM_SET_USER_MEMORY_REGION sequences on the model or the real kernel.") { replay };
    }

    internal static int Replay(FileInfo file, string backend, string? profile, string design, TextWriter stdout, TextWriter stderr,
        FileInfo? hostProfile = null, bool asJson = false)
    {
        var (parsed, error) = ReplayParser.ParseFile(file.FullName);
        if (error is not null)
        {
            stderr.WriteLine($"s2lab memslots replay: {error with { File = file.ToString() }}");
            return ExitCodes.BadInput;
        }
        if (hostProfile is not null && backend == "kernel")
        {
            stderr.WriteLine("s2lab memslots replay: --host-profile configures the model; the kernel backend is the host itself.");
            return ExitCodes.BadInput;
        }
        // Both backends run every line through the seams. The kernel backend's host is this process: the file's
        // addresses move into a window it reserves (ReplayRelocation), and the output shows the file's own addresses.
        var (kvm, host, exit) = backend == "kernel" ? OpenKernel(profile, stderr) : OpenModel(profile, design, hostProfile, stderr);
        if (kvm is null)
            return exit;
        IReadOnlyList<ReplayStep> steps;
        using (kvm)
        {
            if (host is null)
            {
                var run = RunInWindow(kvm, parsed!.Ops, stderr);
                if (run is null)
                    return ExitCodes.BadInput;
                steps = run;
            }
            else
            {
                steps = ReplayRunner.Run(kvm, parsed!.Ops, host);
            }
        }

        var mismatches = steps.Count(s => !s.MatchesExpectation);
        if (asJson)
        {
            stdout.WriteLine(ToJson(steps));
        }
        else
        {
            foreach (var s in steps)
            {
                var shown = Show(s.Result, s.Value, s.Exit, s.Leaf) + (s.Note is null ? "" : $"  # {s.Note}");
                stdout.WriteLine(s.MatchesExpectation
                    ? shown
                    : $"{shown}  # line {s.Op.Line}: expected " +
                      Show(s.Op.Expected ?? s.Result, s.Op.ExpectedValue, s.Op.ExpectedExit, s.Op.ExpectedLeaf));
            }
        }
        if (mismatches > 0)
        {
            stderr.WriteLine($"s2lab memslots replay: {mismatches} of {steps.Count} result(s) differ from the file's \"expect\" values.");
            return ExitCodes.ExpectationFailed;
        }
        return 0;
    }

    /// <summary>The JSON form: one object per operation, in file order.</summary>
    internal static string ToJson(IReadOnlyList<ReplayStep> steps)
    {
        using var stream = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var s in steps)
            {
                w.WriteStartObject();
                w.WriteNumber("line", s.Op.Line);
                w.WriteString("op", s.Op.OpName);
                w.WriteString("result", ErrnoText.Format(s.Result));
                if (s.Op.Expected is { } e)
                    w.WriteString("expect", ErrnoText.Format(e));
                else
                    w.WriteNull("expect");
                if (s.Value is { } v)
                    w.WriteNumber("value", v);
                if (s.Exit is { } exit)
                    w.WriteString("exit", exit);
                if (s.Leaf is { } leaf)
                    w.WriteString("leaf", leaf);
                if (s.Note is { } note)
                    w.WriteString("note", note);
                w.WriteBoolean("matches", s.MatchesExpectation);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The errno, then what else the line observed: a cap's value, an access's exit and stage-2 leaf.</summary>
    private static string Show(Errno e, long? value, string? exit, string? leaf) =>
        ErrnoText.Format(e) + (value is { } v ? $" value={v}" : "") + (exit is null ? "" : $" exit={exit}") + (leaf is null ? "" : $" leaf={leaf}");

    /// <summary>
    /// The kernel backend's run: reserves a PROT_NONE window in this process, moves the file's addresses into it
    /// (one 1 GiB-aligned offset), replays with the real address space and guest loader, and gives each step back its
    /// file line (the file's own uaddr). Null, with the reason on stderr, when the addresses cannot be moved.
    /// </summary>
    private static IReadOnlyList<ReplayStep>? RunInWindow(IKvmSystem kvm, IReadOnlyList<ReplayOp> ops, TextWriter stderr)
    {
        var (low, high, extentError) = ReplayRelocation.Extent(ops);
        if (extentError is not null)
        {
            stderr.WriteLine($"s2lab memslots replay: {extentError}");
            return null;
        }
        var memory = new LinuxAddressSpace();
        var size = ReplayRelocation.WindowSize(low, high);
        var window = memory.MapAnonymous(size, Prot.PROT_NONE, "replay window");
        if (!window.IsOk)
        {
            stderr.WriteLine($"s2lab memslots replay: cannot reserve a 0x{size:x}-byte window for the file's addresses: {ErrnoText.Format(window.Error)}");
            return null;
        }
        try
        {
            var (moved, error) = ReplayRelocation.Relocate(ops, window.Value.Value, size);
            if (moved is null)
            {
                stderr.WriteLine($"s2lab memslots replay: {error}");
                return null;
            }
            var loader = new LinuxGuestLoader(memory, kvm.Arch);
            var steps = ReplayRunner.Run(kvm, moved, new ReplayHost(memory, loader, null, () => loader.LastRefusal));
            return steps.Select((s, i) => s with { Op = ops[i] }).ToList();
        }
        finally
        {
            memory.Unmap(window.Value, size);
        }
    }

    private static (IKvmSystem? Kvm, ReplayHost? Host, int Exit) OpenKernel(string? profile, TextWriter stderr)
    {
        var kvm = LinuxKvmSystem.Open();
        if (!kvm.IsOk)
        {
            stderr.WriteLine($"s2lab memslots replay: cannot use {LinuxKvmSystem.DefaultPath}: {ErrnoText.Format(kvm.Error)}. Run 's2lab probe' for details.");
            return (null, null, ExitCodes.NoKvm);
        }
        var machine = ProbeCommand.ArchName(kvm.Value.Arch);
        if (profile is not null && profile != machine)
        {
            kvm.Value.Dispose();
            stderr.WriteLine($"s2lab memslots replay: --profile {profile} does not match this machine's kernel ({machine}); the kernel backend only runs the host's own architecture.");
            return (null, null, 2);
        }
        return (kvm.Value, null, 0);
    }

    private static (IKvmSystem? Kvm, ReplayHost? Host, int Exit) OpenModel(string? profile, string design, FileInfo? hostProfile, TextWriter stderr)
    {
        var p = KvmProfile.Find(profile ?? "arm64")!;
        if (hostProfile is not null)
        {
            var fromHost = HostProfileFile.TryLoad(hostProfile.FullName, out var why);
            if (fromHost is null)
            {
                stderr.WriteLine($"s2lab memslots replay: --host-profile {why}");
                return (null, null, 2);
            }
            if (profile is not null && fromHost.Name != p.Name)
            {
                stderr.WriteLine($"s2lab memslots replay: --profile {profile} does not match the host profile's architecture ({fromHost.Name}).");
                return (null, null, 2);
            }
            p = fromHost;
        }
        // The same design spelling as run, demo and explain; a memslot-flag variant is a VMM's choice, which a replay
        // file makes itself (its flags field).
        var choice = DesignCatalog.ParseChoice(design, [], allowAll: false, out var choiceError);
        if (choice is { Design.Name: var flagDesign } && DesignCatalog.VariantOf(choice, []).MemslotFlag is not null)
        {
            choice = null;
            choiceError = $"'{design}': a flag variant is the VMM's choice; a replay file sets KVM_MEM_ENABLE_CACHEABLE_PFNMAP in its own flags (use {flagDesign})";
        }

        if (choice is null)
        {
            stderr.WriteLine($"s2lab memslots replay: --design: {choiceError}");
            return (null, null, 2);
        }

        if (ModelBackend.TryCreateWithHost(p, DesignCatalog.KernelSpec(choice, []).ToString(), out var error) is not { } model)
        {
            stderr.WriteLine($"s2lab memslots replay: --design: {error}");
            return (null, null, 2);
        }
        return (model.Kvm, model.Host, 0);
    }
}
