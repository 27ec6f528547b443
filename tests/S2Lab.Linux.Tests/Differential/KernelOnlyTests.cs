using S2Lab.Lab.Replay;
using Xunit.Abstractions;

namespace S2Lab.Linux.Tests.Differential;

public class KernelOnlyTests(ITestOutputHelper output)
{
    [KvmFact]
    public void Generator_sequence_runs_on_the_kernel()
    {
        var ops = new MemslotOpGenerator(1, GeneratorLimits.X86_64).Generate(10_000);
        using var kvm = RealKvm.Open();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var steps = ReplayRunner.Run(kvm, ops);
        output.WriteLine($"{steps.Count} ops in {sw.ElapsedMilliseconds} ms");
        foreach (var g in steps.GroupBy(s => ErrnoText.Format(s.Result)).OrderBy(g => g.Key))
            output.WriteLine($"{g.Key}: {g.Count()}");
        foreach (var s in steps.Take(80))
            output.WriteLine($"{ReplayWriter.Format(s.Op)} -> {ErrnoText.Format(s.Result)}");
        Assert.Equal(ops.Count, steps.Count);
    }
}
