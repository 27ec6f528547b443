using System.Text.Json;
using S2Lab.Cli.Commands;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux;

namespace S2Lab.Cli.Tests;

/// <summary>A fact that needs this machine's /dev/kvm to be x86_64 KVM; skipped with the reason otherwise.</summary>
public sealed class X86KvmFactAttribute : FactAttribute
{
    public X86KvmFactAttribute()
    {
        var kvm = LinuxKvmSystem.Open();
        if (!kvm.IsOk)
        {
            Skip = $"needs a usable {LinuxKvmSystem.DefaultPath}: {kvm.Error}";
            return;
        }
        using (kvm.Value)
        {
            if (kvm.Value.Arch != KvmArch.X86_64)
                Skip = $"needs x86_64 KVM (the file's vcpu line is a real-mode code page); this host's is {kvm.Value.Arch}";
        }
    }
}

/// <summary>
/// <c>memslots replay --backend kernel</c> with a host: the file's addresses move into a window of the s2lab process,
/// and its mmap, munmap, vcpu and access lines run on the real /dev/kvm.
/// </summary>
public class KernelReplayTests
{
    /// <summary>
    /// A small x86_64 file at addresses a recording process could have used (not free in s2lab's own layout). The
    /// code page is at IPA 0xf000 (real mode). The guest does not load from the page the VMM unmapped: that is
    /// difference X1 (docs/kvm-x86-differences.md), where this host answers KVM_EXIT_MMIO and arm64 KVM EFAULT.
    /// </summary>
    private const string File = """
        {"op":"create_vm"}
        {"op":"vcpu","slot":100,"gpa":"0xf000","uaddr":"0x7f0040000000"}
        {"op":"mmap","kind":"anon","uaddr":"0x7f0040200000","size":"0x200000"}
        {"op":"mmap","kind":"anon_ro","uaddr":"0x7f0040400000","size":"0x2000"}
        {"op":"set","v":1,"slot":1,"gpa":"0x200000","size":"0x200000","uaddr":"0x7f0040200000"}
        {"op":"set","v":1,"slot":2,"gpa":"0x400000","size":"0x2000","uaddr":"0x7f0040400000","flags":2}
        {"op":"set","v":1,"slot":3,"gpa":"0x500000","size":"0x1000","uaddr":"0x7f0040200800"}
        {"op":"access","kind":"write","gpa":"0x200008"}
        {"op":"access","kind":"read","gpa":"0x200008"}
        {"op":"access","kind":"write","gpa":"0x3ffff8"}
        {"op":"access","kind":"read","gpa":"0x401000"}
        {"op":"access","kind":"write","gpa":"0x401000"}
        {"op":"access","kind":"read","gpa":"0x600000"}
        {"op":"munmap","uaddr":"0x7f0040202000","size":"0x1000"}
        {"op":"access","kind":"read","gpa":"0x201000"}
        {"op":"access","kind":"write","gpa":"0x203000"}
        {"op":"mmap","kind":"anon","uaddr":"0x7f0040202000","size":"0x1000"}
        {"op":"access","kind":"write","gpa":"0x202ff8"}
        {"op":"access","kind":"exec","gpa":"0x200000"}
        {"op":"mmap","kind":"pfnmap_wb","uaddr":"0x7f0040600000","size":"0x1000"}
        """;

    [X86KvmFact]
    public void Kernel_backend_answers_each_line_as_the_model_does()
    {
        var path = Write(File);
        var kernel = Replay(path, "kernel", null);
        var model = Replay(path, "model", "x86_64");
        Assert.Equal(model.Count, kernel.Count);
        var compared = 0;
        for (var i = 0; i < kernel.Count; i++)
        {
            var (k, m) = (kernel[i], model[i]);
            Assert.Equal(m.Line, k.Line);
            if (k.Op == "access" && k.Note is not null)
            {
                // The x86_64 loader cannot express a fetch: EINVAL with the loader's reason, not a run of something else.
                Assert.Equal("EINVAL", k.Result);
                Assert.Contains("fetch", k.Note);
                continue;
            }
            if (k.Op == "mmap" && k.Note is not null)
            {
                // A special kind needs the oracle's driver: ENOSYS, with the reason.
                Assert.Equal("ENOSYS", k.Result);
                Assert.Contains("driver", k.Note);
                continue;
            }
            Assert.True((m.Result, m.Exit) == (k.Result, k.Exit),
                $"line {k.Line} ({k.Op}): kernel {k.Result} {k.Exit}, model {m.Result} {m.Exit}");
            compared++;
        }
        Assert.Equal(kernel.Count - 2, compared);
        // Every line ran: the access lines came back from KVM_RUN, none is ENOSYS.
        Assert.All(kernel.Where(s => s.Op is "access" && s.Note is null), s => Assert.True(s.Result == "0" && s.Exit is "done" or "mmio", $"line {s.Line}: {s.Result} {s.Exit}"));
        // The uaddr 0x...800 moved by a multiple of 1 GiB is still not page aligned: the kernel refuses it as the model does.
        Assert.Equal("EINVAL", kernel.Single(s => s.Line == 7).Result);
    }

    [X86KvmFact]
    public void Addresses_that_cannot_move_into_the_window_are_refused_naming_the_line()
    {
        var path = Write("""
            {"op":"create_vm"}
            {"op":"mmap","kind":"anon","uaddr":"0x7f0040000000","size":"0x1000"}
            {"op":"munmap","uaddr":"0xfffffffffffff000","size":"0x2000"}
            """);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(ExitCodes.BadInput, MemslotsCommand.Replay(new FileInfo(path), "kernel", null, MemslotsCommand.DefaultDesign, stdout, stderr));
        Assert.Contains("line 3:", stderr.ToString());
        Assert.Contains("wraps", stderr.ToString());
        Assert.Equal("", stdout.ToString());
    }

    private sealed record Row(int Line, string Op, string Result, string? Exit, string? Note);

    private static List<Row> Replay(string path, string backend, string? profile)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var exit = MemslotsCommand.Replay(new FileInfo(path), backend, profile, MemslotsCommand.DefaultDesign, stdout, stderr, asJson: true);
        Assert.True(exit == 0, $"{backend}: exit {exit}: {stderr}");
        using var doc = JsonDocument.Parse(stdout.ToString());
        return doc.RootElement.EnumerateArray().Select(e => new Row(e.GetProperty("line").GetInt32(), e.GetProperty("op").GetString()!,
            e.GetProperty("result").GetString()!, e.TryGetProperty("exit", out var x) ? x.GetString() : null,
            e.TryGetProperty("note", out var n) ? n.GetString() : null)).ToList();
    }

    private static string Write(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-kernel-replay-{Guid.NewGuid():n}.jsonl");
        System.IO.File.WriteAllText(path, text);
        return path;
    }
}
