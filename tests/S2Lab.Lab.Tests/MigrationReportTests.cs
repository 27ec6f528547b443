using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>What a migration's report claims: pre-copy counts, setup failures, stale-copy, device memory contents.</summary>
public class MigrationReportTests
{
    private static RunResult Demo(string design) =>
        ScenarioRunner.RunOnce(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), DesignCatalog.DefaultRef(design), RunVariant.Default);

    [Fact]
    public void Precopy_rounds_count_zero_pages_and_a_destination_failure_says_the_guest_stays()
    {
        var ok = Demo("linux-6.9").Steps.OfType<MigrateResult>().Single(m => m.Label == "grace-to-altra");
        var first = ok.Rounds.First(r => r.Round == 1);
        Assert.Equal(256 * 256, first.PagesSent + first.ZeroPages); // round 1 covers all 256 MiB of RAM, page by page
        Assert.True(first.ZeroPages > 0);
        var failed = Demo("linux-6.17").Steps.OfType<MigrateResult>().Single(m => m.Label == "grace-to-altra");
        Assert.Equal(MigrationVerdict.SetupFailed, failed.Outcome);
        Assert.Contains("the guest stays on the source", failed.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("read", false)]
    [InlineData("[read, write]", true)]
    public void Stale_copy_is_claimed_only_for_device_memory_the_guest_wrote(string types, bool stale)
    {
        var text = $$"""
            name: stale
            hosts:
              grace: { cpu: neoverse-v2, design: linux-6.9, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
              other: { cpu: neoverse-v2, design: linux-6.9, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
            vms:
              vm:
                host: grace
                memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }]
                devices: [{ device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } }]
            steps:
              - start: { vm: vm, host: grace }
              - { access: { vm: vm, region: gpu0.usemem, mair: 0xFF, type: {{types}} } }
              - { id: m, migrate: { vm: vm, to: other } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "stale.yaml"), null, RunVariant.Default);
        var m = run.Steps.OfType<MigrateResult>().Single();
        Assert.True(m.Outcome is MigrationVerdict.SucceededSameTypes or MigrationVerdict.SucceededChangedTypes, m.Outcome.ToString());
        var copy = m.DeviceCopies.Single(c => c.Region == "gpu0.usemem");
        Assert.Equal(stale, copy.Hazards.Any(h => h.Name == "stale-copy")); // 6.9 maps usemem Device at stage 2
    }

    [Fact]
    public void Device_memory_left_on_the_destination_by_an_earlier_VM_does_not_show_through_a_migration()
    {
        var text = """
            name: leftover
            hosts:
              grace: { cpu: neoverse-v2, design: linux-6.17, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
              other: { cpu: neoverse-v2, design: linux-6.17, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
            vms:
              vm:
                host: grace
                memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }]
                devices: [{ device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } }]
            steps:
              - start: { vm: vm, host: other }
              - { access: { vm: vm, region: gpu0.usemem, offset: 0x1000, mair: 0xFF, type: write, value: 0x5555 } }
              - stop: vm
              - start: { vm: vm, host: grace }
              - { access: { vm: vm, region: gpu0.usemem, offset: 0x2000, mair: 0xFF, type: write, value: 0x7777 } }
              - { id: m, migrate: { vm: vm, to: other } }
              - { id: old, access: { vm: vm, region: gpu0.usemem, offset: 0x1000, mair: 0xFF, type: read } }
              - { id: new, access: { vm: vm, region: gpu0.usemem, offset: 0x2000, mair: 0xFF, type: read } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "leftover.yaml"), null, RunVariant.Default);
        Assert.True(run.Steps.OfType<MigrateResult>().Single().Outcome is MigrationVerdict.SucceededSameTypes or MigrationVerdict.SucceededChangedTypes);
        // The guest never wrote 0x1000 on grace: it reads 0 there on grace, so it must read 0 after the move too.
        Assert.Equal(0UL, run.Steps.OfType<AccessResult>().Single(a => a.Label == "old").Region.Accesses.Single().Value);
        Assert.Equal(0x7777UL, run.Steps.OfType<AccessResult>().Single(a => a.Label == "new").Region.Accesses.Single().Value);
    }
}
