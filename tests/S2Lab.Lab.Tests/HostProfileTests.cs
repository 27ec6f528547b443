using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Scenario hosts from <c>s2lab probe</c> host profiles (docs/host-profile.md).</summary>
public class HostProfileTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Profiles");

    private static string Scenario(string grace, string altra) => $$"""
        name: probed
        hosts:
          grace: { profile: {{grace}}, design: linux-6.17, devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } } }
          altra: { profile: {{altra}}, design: linux-6.17, devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } } }
        vms:
          vm:
            host: grace
            devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
        steps:
          - { id: g, start: vm }
          - { id: m, migrate: { vm: vm, to: altra } }
          - expect: { step: g, outcome: ok, cap243: 1 }
          - expect: { step: m, outcome: setup-failed, errno: EINVAL }
        """;

    [Fact]
    public void Rule1_profiles_give_the_hosts_their_capability()
    {
        var s = ScenarioLoader.Parse(Scenario("grace-6.17.json", "altra-6.17.json"), "probed.yaml", Dir);
        Assert.True(s.Host("grace").Cpu.SupportsCacheablePfnmap);
        Assert.False(s.Host("altra").Cpu.SupportsCacheablePfnmap);
        Assert.Equal(44, s.Host("altra").Cpu.PaBits);
        Assert.Contains("capability 243 = 0", s.Host("altra").CpuSource, StringComparison.Ordinal);
        Assert.Equal(32767, s.Host("grace").KvmProfile!.UserMemSlots);
        var report = ScenarioRunner.Run(s, null);
        Assert.True(report.ExpectationsPassed, string.Join("; ", report.Checks.Where(c => !c.Check.Passed).Select(c => $"{c.Check.Field}: {c.Check.Actual}")));
    }

    [Fact]
    public void A_profile_from_a_kernel_without_capability_243_cannot_describe_the_CPU()
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Scenario("grace-6.9.json", "altra-6.17.json"), "probed.yaml", Dir)).Errors.Single();
        Assert.Equal("hosts.grace.profile", e.Field);
        Assert.Contains("does not know capability 243", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_arm64_and_missing_profiles_are_errors()
    {
        var errors = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Scenario("x86.json", "missing.json"), "probed.yaml", Dir)).Errors;
        Assert.Contains(errors, e => e.Field == "hosts.grace.profile" && e.Message.Contains("x86_64", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "hosts.altra.profile" && e.Message.Contains("cannot read", StringComparison.Ordinal));
    }
}
