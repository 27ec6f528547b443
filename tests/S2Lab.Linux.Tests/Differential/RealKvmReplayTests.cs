using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;
using Xunit.Abstractions;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>
/// The replay's vcpu and access lines on real x86_64 KVM, through the same seams the model replays them with
/// (issue 11 step 9): the real address space (<see cref="LinuxAddressSpace"/>) and guest loader
/// (<see cref="LinuxGuestLoader"/>, real mode), against the model's (<see cref="ModelReplayMappings.Host"/>). Over
/// anonymous memory each line answers the same: the errno, and how KVM_RUN came back (done, mmio). The leaf is the
/// model's alone (real userspace cannot read the stage-2 table). Exec lines are arm64's: the x86_64 loader cannot
/// express a fetch (EINVAL), so they are not compared.
/// </summary>
public class RealKvmReplayTests(ITestOutputHelper output)
{
    /// <summary>Where the replay's mappings go: a window this process reserves first, so that MAP_FIXED replaces only it.</summary>
    private const ulong Window = 64UL << 20;

    private const ulong Page = 0x1000;

    [KvmTheory(Arch = "x86_64")]
    [InlineData("ram")]
    [InlineData("readonly")]
    [InlineData("holes")]
    public void Vcpu_and_access_lines_answer_on_real_kvm_as_on_the_model(string name)
    {
        using var kvm = RealKvm.Open();
        var memory = new LinuxAddressSpace();
        var window = memory.MapAnonymous(Window, Prot.PROT_NONE, "replay window");
        Assert.True(window.IsOk, $"reserving the window failed with {window.Error}");
        try
        {
            var ops = Parse(Script(name, window.Value.Value));
            var real = ReplayRunner.Run(kvm, ops, new ReplayHost(memory, new LinuxGuestLoader(memory, kvm.Arch)));
            var model = ModelBackend.TryCreateWithHost(Differential.HostProfile(kvm), ModelBackend.DefaultDesign, out var error)
                ?? throw new InvalidOperationException(error);
            IReadOnlyList<ReplayStep> modelled;
            using (model.Kvm)
                modelled = ReplayRunner.Run(model.Kvm, ops, model.Host);

            var lines = real.Zip(modelled, (r, m) =>
                $"{ReplayWriter.Format(r.Op, null),-100} kernel {ErrnoText.Format(r.Result)} {r.Exit}, model {ErrnoText.Format(m.Result)} {m.Exit} {m.Leaf}").ToList();
            output.WriteLine(string.Join("\n", lines));
            var differ = real.Zip(modelled).Where(p => (p.First.Result, p.First.Exit) != (p.Second.Result, p.Second.Exit)).ToList();
            Assert.True(differ.Count == 0, $"{differ.Count} line(s) differ:\n" + string.Join("\n", differ.Select(p =>
                $"line {p.First.Op.Line}: {ReplayWriter.Format(p.First.Op, null)} -> kernel {ErrnoText.Format(p.First.Result)} {p.First.Exit}, " +
                $"model {ErrnoText.Format(p.Second.Result)} {p.Second.Exit}")));
            // Every access line ran: none is ENOSYS or EBADF, and each came back from KVM_RUN one way or the other.
            var accesses = real.Where(s => s.Op is AccessOp).ToList();
            Assert.NotEmpty(accesses);
            Assert.All(accesses, s => Assert.True(s.Result == Errno.None && s.Exit is "done" or "mmio", $"line {s.Op.Line}: {ErrnoText.Format(s.Result)} {s.Exit}"));
            Assert.Contains(accesses, s => s.Exit == "done");
        }
        finally
        {
            memory.Unmap(window.Value, Window);
        }
    }

    /// <summary>
    /// The lines of each case, with addresses inside the window at <paramref name="b"/>. The code page is at IPA 0xf000
    /// (real mode: below 1 MiB); the data lies at 1 MiB and above.
    /// </summary>
    private static string Script(string name, ulong b)
    {
        string H(ulong offset) => $"\"0x{b + offset:x}\"";
        var head = $$"""
            {"op":"create_vm"}
            {"op":"vcpu","slot":100,"gpa":"0xf000","uaddr":{{H(0)}}}
            {"op":"mmap","kind":"anon","uaddr":{{H(0x100000)}},"size":"0x10000"}
            """;
        return head + "\n" + name switch
        {
            // Loads and stores in a memslot over anonymous memory complete; outside every memslot they exit to userspace.
            "ram" => $$"""
                {"op":"set","v":1,"slot":1,"gpa":"0x100000","size":"0x10000","uaddr":{{H(0x100000)}}}
                {"op":"access","kind":"read","gpa":"0x100000"}
                {"op":"access","kind":"write","gpa":"0x100008"}
                {"op":"access","kind":"read","gpa":"0x100008"}
                {"op":"access","kind":"write","gpa":"0x10fff8"}
                {"op":"access","kind":"read","gpa":"0x200000"}
                {"op":"access","kind":"write","gpa":"0x200000"}
                {"op":"set","v":1,"slot":1,"gpa":"0x100000","size":"0","uaddr":{{H(0x100000)}}}
                {"op":"access","kind":"read","gpa":"0x100000"}
                {"op":"access","kind":"write","gpa":"0x100008"}
                {"op":"set","v":1,"slot":1,"gpa":"0x300000","size":"0x10000","uaddr":{{H(0x100000)}}}
                {"op":"access","kind":"write","gpa":"0x300ff8"}
                {"op":"access","kind":"read","gpa":"0x300ff8"}
                """,
            // A READONLY memslot over read-only anonymous memory: loads complete, stores exit as MMIO (rule 7 on arm64;
            // the same uAPI on x86_64).
            "readonly" => $$"""
                {"op":"mmap","kind":"anon_ro","uaddr":{{H(0x200000)}},"size":"0x2000"}
                {"op":"set","v":1,"slot":1,"gpa":"0x100000","size":"0x10000","uaddr":{{H(0x100000)}},"flags":2}
                {"op":"set","v":1,"slot":2,"gpa":"0x200000","size":"0x2000","uaddr":{{H(0x200000)}},"flags":2}
                {"op":"access","kind":"read","gpa":"0x100000"}
                {"op":"access","kind":"write","gpa":"0x100000"}
                {"op":"access","kind":"read","gpa":"0x201000"}
                {"op":"access","kind":"write","gpa":"0x201000"}
                {"op":"access","kind":"read","gpa":"0x201000"}
                """,
            // The VMM unmaps a page of a memslot and maps it again: the pages around it and the new page answer alike.
            // The guest does not touch the hole itself: there the model answers as arm64 KVM does (EFAULT from
            // user_mem_abort), while this x86_64 host (shadow MMU, real mode) emulates the load, fails to read guest
            // memory and exits with KVM_EXIT_MMIO; an EPT host would fail with EFAULT. x86_64's fault path is not modelled.
            _ => $$"""
                {"op":"set","v":1,"slot":1,"gpa":"0x100000","size":"0x10000","uaddr":{{H(0x100000)}}}
                {"op":"access","kind":"write","gpa":"0x102000"}
                {"op":"access","kind":"write","gpa":"0x101000"}
                {"op":"munmap","uaddr":{{H(0x102000)}},"size":"0x1000"}
                {"op":"access","kind":"read","gpa":"0x101000"}
                {"op":"access","kind":"read","gpa":"0x103000"}
                {"op":"mmap","kind":"anon","uaddr":{{H(0x102000)}},"size":"0x1000"}
                {"op":"access","kind":"read","gpa":"0x102000"}
                {"op":"access","kind":"write","gpa":"0x102ff8"}
                """,
        };
    }

    private static IReadOnlyList<ReplayOp> Parse(string text)
    {
        var (file, error) = ReplayParser.Parse(new StringReader(text), "real-kvm-replay");
        Assert.True(error is null, error?.ToString());
        return file!.Ops;
    }
}
