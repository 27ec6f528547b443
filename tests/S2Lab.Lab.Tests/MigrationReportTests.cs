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

    /// <summary>
    /// B2.11 as bytes: the first migration's copy leaves a clean line of usemem in the source host's data cache (a
    /// cacheable read); the next VM there writes usemem through its Device stage-2 mapping, around that line; the second
    /// copy hits it and moves the old value. With FWB under linux-6.17 the stage 2 is Normal-WB, the guest's write
    /// updates the line and the copy is right.
    /// </summary>
    [Theory]
    [InlineData("linux-6.9", true)]
    [InlineData("linux-6.17", false)]
    public void A_copy_through_a_stale_line_of_the_VMMs_mapping_is_observed_with_its_bytes(string design, bool stale)
    {
        var text = $$"""
            name: stale-line
            hosts:
              grace: { cpu: neoverse-v2, design: {{design}}, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
              b: { cpu: neoverse-v2, design: {{design}}, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
              c: { cpu: neoverse-v2, design: {{design}}, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, resmem: 1GiB } } }
            vms:
              vm:
                host: grace
                memory: [{ name: ram, gpa: 0x40000000, size: 16MiB }]
                devices: [{ device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } }]
            steps:
              - start: { vm: vm, host: grace }
              - { access: { vm: vm, region: gpu0.usemem, offset: 0x40, mair: 0xFF, type: write, value: 0x1111 } }
              - { id: first, migrate: { vm: vm, to: b } }
              - stop: vm
              - start: { vm: vm, host: grace }
              - { access: { vm: vm, region: gpu0.usemem, offset: 0x40, mair: 0xFF, type: [write, read], value: 0x2222 } }
              - { id: second, migrate: { vm: vm, to: c } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "stale-line.yaml"), null, RunVariant.Default);
        var first = run.Steps.OfType<MigrateResult>().Single(m => m.Label == "first").DeviceCopies.Single(c => c.Region == "gpu0.usemem");
        var second = run.Steps.OfType<MigrateResult>().Single(m => m.Label == "second").DeviceCopies.Single(c => c.Region == "gpu0.usemem");
        // The first copy read the PoC: right, but under a Device stage 2 still possible (the hazard without bytes).
        Assert.Null(first.StaleOffset);
        Assert.Equal(stale, first.Hazards.Any(h => h.Name == "stale-copy"));
        if (stale)
        {
            Assert.Equal((0x40UL, 0x1111UL, 0x2222UL), (second.StaleOffset, second.Copied, second.Expected));
            Assert.StartsWith("copied 0x0000000000001111 at +0x40, expected 0x0000000000002222", Assert.Single(second.Hazards).Detail, StringComparison.Ordinal);
            Assert.Equal("stale-copy (+0x40 byte 0 copied 0x11, expected 0x22)", second.HazardText);
        }
        else
        {
            Assert.Empty(second.Hazards);
            Assert.Null(second.Copied);
        }
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
    /// <summary>
    /// dataIntact is what the migrated guest finds before it writes again (docs/scenario-schema.md). After altra -> grace
    /// under linux-6.9 the resumed guest's first read of usemem returns a stale word (the copy moved an old value, and the
    /// guest's Device read goes around the restore's dirty line to the PoC); the resume then replays the guest's last
    /// access, a write of the expected value. Judged after that write (the old order), the data looked intact.
    /// </summary>
    [Fact]
    public void Data_intact_judges_the_guests_first_read_on_the_destination_before_it_writes_again()
    {
        var m = Demo("linux-6.9").Steps.OfType<MigrateResult>().Single(x => x.Label == "altra-to-grace");
        Assert.Equal(MigrationVerdict.SucceededSameTypes, m.Outcome);
        Assert.NotNull(m.DeviceCopies.Single(c => c.Region == "gpu0.usemem").StaleOffset); // the copy was observed stale
        var first = m.AfterSwitchover.Single(v => v.Region == "gpu0.usemem").Accesses[0];
        Assert.Equal(Arch.Translation.S2AccessKind.Read, first.Type);
        Assert.NotNull(first.Expected); // the resumed guest's first read is stale ...
        Assert.False(m.DataIntact); // ... so the data is not intact, though the resume's write restores the word
        Assert.Equal(new LostWord("gpu0.usemem", 0, first.Value, first.Expected!.Value), m.Lost);
        Assert.Contains($"gpu0.usemem+0x0: read 0x{first.Value:X16}, expected 0x{first.Expected:X16}", m.DataCheck, StringComparison.Ordinal);
        Assert.Equal("data CORRUPTED (gpu0.usemem+0x0 byte 0 read 0x16, expected 0x1B)", m.DataText);
    }

    /// <summary>
    /// The data check and the resumed guest agree: under every design of the demo, a migration whose resumed guest read a
    /// written word stale (before writing it again) is not data-intact, and an intact one has no such read.
    /// </summary>
    [Fact]
    public void A_stale_first_read_after_switch_over_and_data_intact_never_disagree()
    {
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(DemoScenario.Text(), "demo.yaml"), "all");
        int judged = 0;
        foreach (var m in report.Runs.SelectMany(r => r.Steps).OfType<MigrateResult>().Where(m => m.DataIntact is not null))
        {
            var staleFirst = m.AfterSwitchover.Any(v => v.Accesses.FirstOrDefault() is { Type: Arch.Translation.S2AccessKind.Read, Expected: not null });
            Assert.False(staleFirst && m.DataIntact == true, $"{m.Label}: {m.DataCheck}");
            Assert.Equal(m.DataIntact == false, m.Lost is not null);
            judged++;
        }

        Assert.True(judged >= 8, $"{judged} migrations checked");
    }
    /// <summary>
    /// RAM's copy goes through the VMM's cacheable mapping too: on Altra (no FWB) a guest write with MAIR 0x44 goes around
    /// the dirty line the VMM's store left (B2.11), and the copy moves the VMM's value; on Grace FWB forces Normal-WB at
    /// stage 2 and the copy is right (scenarios/stale-copy-ram.yaml).
    /// </summary>
    [Fact]
    public void A_RAM_copy_through_a_line_the_guest_wrote_around_is_observed_with_its_bytes()
    {
        var run = ScenarioRunner.RunOnce(ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, "stale-copy-ram.yaml")), null, RunVariant.Default);
        var a = run.Steps.OfType<MigrateResult>().Single(m => m.Label == "a-move");
        var ram = Assert.Single(a.RamCopies!);
        Assert.Equal(("ram", 0x1000UL, 0x1111UL, 0x2222UL), (ram.Region, ram.StaleOffset, ram.Copied, ram.Expected));
        Assert.Equal("stale-copy (+0x1000 byte 0 copied 0x11, expected 0x22)", ram.HazardText);
        Assert.Equal(new LostWord("ram", 0x1000, 0x1111, 0x2222), a.Lost);
        var g = run.Steps.OfType<MigrateResult>().Single(m => m.Label == "g-move");
        Assert.Null(g.RamCopies);
        Assert.True(g.DataIntact);
    }
}
