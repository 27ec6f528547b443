using S2Lab.Lab.Replay;
using Xunit.Abstractions;

namespace S2Lab.Linux.Tests.Differential;

public class ExploreTests(ITestOutputHelper output)
{
    [KvmFact]
    public void Explore()
    {
        if (Environment.GetEnvironmentVariable("S2LAB_EXPLORE") is not { } n)
            return;
        using var kvm = RealKvm.Open();
        var profile = Differential.HostProfile(kvm);
        output.WriteLine(profile.ToString());
        var seen = new HashSet<string>();
        for (var seed = 1; seed <= int.Parse(n, System.Globalization.CultureInfo.InvariantCulture); seed++)
        {
            var ops = new MemslotOpGenerator(seed, Differential.Limits(profile)).Generate(2500);
            var d = Differential.Compare(seed, ops, kvm, () => Differential.Model(profile));
            if (d is null)
                continue;
            output.WriteLine(d.ToString());
            foreach (var op in d.Repro)
                output.WriteLine("    " + ReplayWriter.Format(op));
        }
    }
}
