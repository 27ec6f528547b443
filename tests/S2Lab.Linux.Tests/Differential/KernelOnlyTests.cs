using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;
using Xunit.Abstractions;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>The generator and the golden replay files against the real kernel alone.</summary>
public class KernelOnlyTests(ITestOutputHelper output)
{
    /// <summary>Seeds of the golden files in Replays/golden/ (recorded on x86_64 by <see cref="Regenerate_golden_files"/>).</summary>
    public static readonly int[] GoldenSeeds = [1, 2, 3];

    public const int GoldenOps = 4000;

    [KvmFact]
    public void Kernel_is_deterministic_for_a_generated_sequence()
    {
        // The differential test relies on the kernel answering a sequence the same way every time (fresh VMs).
        var ops = new MemslotOpGenerator(7, GeneratorLimits.X86_64).Generate(3000);
        using var kvm = RealKvm.Open();
        var a = ReplayRunner.Run(kvm, ops).Select(s => s.Result).ToArray();
        var b = ReplayRunner.Run(kvm, ops).Select(s => s.Result).ToArray();
        Assert.Equal(a, b);
        output.WriteLine(string.Join(", ", a.GroupBy(e => e).OrderBy(g => g.Key).Select(g => $"{ErrnoText.Format(g.Key)}: {g.Count()}")));
        // The sequence reaches every outcome the rules produce.
        Assert.Contains(Errno.None, a);
        Assert.Contains(Errno.EINVAL, a);
        Assert.Contains(Errno.EEXIST, a);
        Assert.Contains(Errno.EBADF, a);
    }

    // The files were recorded on x86_64; another architecture answers differently by design (slot count, arch hook).
    [KvmTheory(Arch = "x86_64")]
    [MemberData(nameof(GoldenFiles))]
    public void Golden_file_still_matches_this_kernel(string name)
    {
        using var kvm = RealKvm.Open();
        var file = GoldenReplays.Load(name);
        var mismatches = GoldenReplays.Mismatches(ReplayRunner.Run(kvm, file.Ops), "kernel");
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches.Take(20)));
    }

    public static TheoryData<string> GoldenFiles() => GoldenReplays.Files();

    /// <summary>Rewrites Replays/golden/*.jsonl from this kernel (a tool: skipped unless S2LAB_REGENERATE_GOLDEN names the test project folder).</summary>
    [RegenerateGoldenFact]
    public void Regenerate_golden_files()
    {
        var target = Environment.GetEnvironmentVariable(RegenerateGoldenFactAttribute.Variable)!;
        using var kvm = RealKvm.Open();
        Assert.Equal(KvmArch.X86_64, kvm.Arch);
        foreach (var seed in GoldenSeeds)
        {
            var ops = new MemslotOpGenerator(seed, GeneratorLimits.X86_64).Generate(GoldenOps);
            var steps = ReplayRunner.Run(kvm, ops);
            var lines = new List<string>
            {
                $"# Golden memslot replay: MemslotOpGenerator seed {seed}, {ops.Count} operations, GeneratorLimits.X86_64.",
                $"# \"expect\" is what the real kernel answered: Linux {kvm.Host.Release} {kvm.Host.Machine}.",
                "# Regenerate: S2LAB_REGENERATE_GOLDEN=$PWD/tests/S2Lab.Linux.Tests dotnet test tests/S2Lab.Linux.Tests --filter Regenerate_golden_files",
            };
            lines.AddRange(ReplayWriter.Golden(steps));
            var dir = Path.Combine(target, "Replays", "golden");
            Directory.CreateDirectory(dir);
            File.WriteAllLines(Path.Combine(dir, $"x86_64-seed{seed}.jsonl"), lines);
        }
    }
}

/// <summary>Runs only when S2LAB_REGENERATE_GOLDEN is set and /dev/kvm is usable.</summary>
public sealed class RegenerateGoldenFactAttribute : FactAttribute
{
    public const string Variable = "S2LAB_REGENERATE_GOLDEN";

    public RegenerateGoldenFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)))
            Skip = $"a tool, not a check: set {Variable}=/path/to/tests/S2Lab.Linux.Tests to rewrite Replays/golden from this kernel";
        else if (RealKvm.UnavailableReason is { } why)
            Skip = $"needs a usable KVM: {why}";
    }
}
