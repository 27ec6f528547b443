using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scorecard;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>
/// What docs/designs.md says the demo must find, asserted on the computed scorecard rows and step results. Each finding
/// is derived from the rules; the tests also change the hosts to show the rows follow the model, not a table.
/// </summary>
public class DesignFindingsTests
{
    private static readonly Lazy<IReadOnlyList<RunResult>> Demo = new(() => ScenarioRunner.Run(DemoScenario.Load(), "all").Runs);

    private static RunResult Run(string design, string variant = "") =>
        Demo.Value.Single(r => r.Design == design && r.Variant == variant);

    private static ScorecardRow Row(string design, string variant = "") => Run(design, variant).Scorecard;

    [Fact]
    public void Demo_has_one_row_per_design_and_variant()
    {
        var rows = Demo.Value.Select(r => (r.Design, r.Variant)).ToList();
        Assert.Equal(
            [
                ("linux-6.8", ""), ("linux-6.9", ""), ("linux-6.17", ""), ("linux-6.17", "usemem=mixedmap"),
                ("proposal-memslot-flag", "flag=prefer-cacheable"), ("proposal-memslot-flag", "flag=prefer-migratable"),
                ("proposal-module-param", "param=on"), ("proposal-module-param", "param=off"),
            ],
            rows);
    }

    [Fact]
    public void Linux_6_9_fails_cacheable_where_possible_and_no_mismatched_alias_on_grace()
    {
        var row = Row("linux-6.9");
        Assert.False(row.CacheableWherePossible);
        Assert.False(row.NoMismatchedAlias);
        Assert.Contains(row.Evidence["noMismatchedAlias"].Evidence, e => e.Contains("on grace", StringComparison.Ordinal));
        Assert.Contains(row.Evidence["cacheableWherePossible"].Evidence, e => e.Contains("on grace", StringComparison.Ordinal));
    }

    [Fact]
    public void Rule18_linux_6_9_demotes_usemem_to_Device_on_grace()
    {
        var usemem = Run("linux-6.9").Steps.OfType<AccessResult>().First(a => a.Label == "grace-usemem").Region;
        Assert.Equal(KvmS2MemType.DeviceNGnRE, usemem.Stage2);
        Assert.Equal("Device-nGnRE", usemem.Effective);
        Assert.Equal(AccessOutcome.InstructionAbort, usemem.Accesses.Single(a => a.Type == S2AccessKind.Execute).Outcome);
    }

    [Fact]
    public void Linux_6_17_passes_properties_3_4_and_5()
    {
        var row = Row("linux-6.17");
        Assert.True(row.CacheableWherePossible);
        Assert.True(row.NoMismatchedAlias);
        Assert.True(row.NoImpossibleMaintenance);
        var usemem = Run("linux-6.17").Steps.OfType<AccessResult>().First(a => a.Label == "grace-usemem").Region;
        Assert.Equal(KvmS2MemType.Normal, usemem.Stage2);
        Assert.Equal("Normal-WB", usemem.Effective);
    }

    [Fact]
    public void Rule6_linux_6_17_refuses_the_migration_to_altra_at_memslot_creation()
    {
        var m = Run("linux-6.17").Steps.OfType<MigrateResult>().Single(x => x.Label == "grace-to-altra");
        Assert.Equal(MigrationVerdict.SetupFailed, m.Outcome);
        Assert.Equal(Kernel.Kvm.Uapi.Errno.EINVAL, m.Errno);
        Assert.StartsWith("KVM_SET_USER_MEMORY_REGION", m.FailedCall, StringComparison.Ordinal);
        var usemem = m.DestinationRegions.Single(r => r.Region == "gpu0.usemem");
        Assert.Equal(RegionOutcome.Failed, usemem.Outcome);
        Assert.Equal(Kernel.Kvm.Uapi.Errno.EINVAL, usemem.Errno);
        Assert.Equal("EINVAL", usemem.Text);
        Assert.False(m.SwitchedOver);
    }

    [Fact]
    public void A_VMM_checking_capability_243_refuses_the_migration_before_any_memslot()
    {
        var m = Run("linux-6.17").Steps.OfType<MigrateResult>().Single(x => x.Label == "grace-to-altra-checked");
        Assert.Equal(MigrationVerdict.Refused, m.Outcome);
        Assert.Contains("243", m.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(m.DestinationRegions, r => r.Outcome == RegionOutcome.Created || (r.Outcome == RegionOutcome.Failed && r.Errno == Kernel.Kvm.Uapi.Errno.EINVAL));
    }

    [Fact]
    public void Rule7_linux_6_17_with_a_cacheable_mixedmap_fails_no_fault_time_death()
    {
        var row = Row("linux-6.17", "usemem=mixedmap");
        Assert.False(row.NoFaultTimeDeath);
        Assert.Contains(row.Evidence["noFaultTimeDeath"].Evidence, e => e.Contains("altra", StringComparison.Ordinal) && e.Contains("EFAULT", StringComparison.Ordinal));
        Assert.True(Row("linux-6.17").NoFaultTimeDeath);
    }

    [Fact]
    public void Module_param_on_fails_no_impossible_maintenance_on_altra()
    {
        var row = Row("proposal-module-param", "param=on");
        Assert.False(row.NoImpossibleMaintenance);
        Assert.All(row.Evidence["noImpossibleMaintenance"].Evidence, e => Assert.Contains("on altra", e, StringComparison.Ordinal));
        Assert.True(Row("proposal-module-param", "param=off").NoImpossibleMaintenance);
    }

    [Fact]
    public void Memslot_flag_clear_fails_no_mismatched_alias()
    {
        Assert.False(Row("proposal-memslot-flag", "flag=prefer-migratable").NoMismatchedAlias);
        Assert.True(Row("proposal-memslot-flag", "flag=prefer-cacheable").NoMismatchedAlias);
    }

    [Fact]
    public void Designs_without_capability_243_fail_early_discovery()
    {
        Assert.False(Row("linux-6.8").EarlyDiscovery);
        Assert.False(Row("linux-6.9").EarlyDiscovery);
        Assert.True(Row("linux-6.17").EarlyDiscovery);
    }

    private static AccessRecord LastRead(RunResult run, string step) =>
        run.Steps.OfType<AccessResult>().Single(s => s.Label == step).Region.Accesses.Last(a => a.Type == S2AccessKind.Read);

    /// <summary>
    /// Issue 12, the thread's first case as bytes: linux-6.9 on altra (no FWB) maps usemem Device at stage 2 while the
    /// VMM maps it cacheable. The VMM's store sits in a dirty line; the guest's Device read goes around it to the PoC
    /// (B2.11 mismatched attributes, D7.5.1) and returns the old 0 instead of 0xA5. Property 4 lists the stale read.
    /// </summary>
    [Fact]
    public void Issue12_linux_6_9_on_altra_the_guest_reads_0_where_the_VMM_wrote_0xA5()
    {
        var read = LastRead(Run("linux-6.9"), "altra-usemem-vmm");
        Assert.Equal(0UL, read.Value);
        Assert.Equal(0xA5UL, read.Expected);
        Assert.Equal("bypass", read.Path);
        Assert.Contains("byte 0 read 0x00, expected 0xA5", read.ToString(), StringComparison.Ordinal);
        Assert.Contains(Row("linux-6.9").Evidence["noMismatchedAlias"].Evidence, e => e.Contains("stale read", StringComparison.Ordinal));
    }

    /// <summary>
    /// The thread's second case: the module parameter on altra maps usemem Normal, so a cacheable read sees the VMM's
    /// byte; but KVM could not clean the image the VMM loaded (no kernel VA, rule 14), and a guest with SCTLR_EL1.M=0
    /// reads Device-nGnRnE from the PoC: 0 instead of 0x5A. Property 5 lists the stale read; property 4 does not, since
    /// stage 2 is Normal (the guest chose to go around the cache).
    /// </summary>
    [Fact]
    public void Issue12_module_parameter_on_altra_a_guest_with_its_MMU_off_reads_0_where_the_VMM_loaded_0x5A()
    {
        var run = Run("proposal-module-param", "param=on");
        var cached = LastRead(run, "altra-usemem-vmm");
        Assert.Equal(0xA5UL, cached.Value);
        Assert.False(cached.Stale);
        var mmuOff = LastRead(run, "altra-usemem-mmu-off");
        Assert.Equal(0UL, mmuOff.Value);
        Assert.Equal(0x5AUL, mmuOff.Expected);
        Assert.Equal("bypass", mmuOff.Path);
        Assert.Contains(run.Scorecard.Evidence["noImpossibleMaintenance"].Evidence, e => e.Contains("stale read", StringComparison.Ordinal));
        Assert.DoesNotContain(run.Scorecard.Evidence["noMismatchedAlias"].Evidence, e => e.Contains("stale read", StringComparison.Ordinal));
        // With FWB (grace, linux-6.17) the same guest reads the VMM's byte: FWB forces Write-Back over its Device-nGnRnE.
        var grace = ScenarioLoader.Parse(DemoScenario.Text().Edit("cpu: neoverse-n1", "cpu: neoverse-v1"), "demo-two-fwb.yaml");
        var fwb = LastRead(ScenarioRunner.RunOnce(grace, new DesignRef("linux-6.17"), RunVariant.Default), "altra-usemem-mmu-off");
        Assert.Equal(0x5AUL, fwb.Value);
        Assert.False(fwb.Stale);
    }

    /// <summary>
    /// A previous VM's data stays at the PoC while the host's zeroing of the page sits in a dirty line of its cacheable
    /// linear map. linux-6.9 maps usemem Device, so the guest reads around the zeros and sees the old data (B2.11): a
    /// leak, judged stale against the zeros it should read. A device's DMA to the PoC is read correctly by the same
    /// Device mapping (nothing cacheable holds the line).
    /// </summary>
    [Theory]
    [InlineData("previous-vm", 0xA5UL, 0x0UL)]
    [InlineData("device", 0xA5UL, 0xA5UL)]
    public void Issue12_linux_6_9_host_writers_and_what_a_Device_read_returns(string writer, ulong read, ulong expected)
    {
        var text = DemoScenario.Text().Edit("writer: vmm, value: 0xA5", $"writer: {writer}, value: 0xA5");
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "demo-writer.yaml"), new DesignRef("linux-6.9"), RunVariant.Default);
        var r = LastRead(run, "altra-usemem-vmm");
        Assert.Equal(read, r.Value);
        Assert.Equal(read != expected, r.Stale);
        if (r.Stale)
        {
            Assert.Equal(expected, r.Expected);
            Assert.Equal("bypass", r.Path);
        }
    }

    [Fact]
    public void Issue12_an_unknown_writer_is_an_error_at_its_field()
    {
        var text = DemoScenario.Text().Edit("writer: vmm, value: 0xA5", "writer: gpu, value: 0xA5");
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, "demo.yaml")).Errors.Single();
        Assert.EndsWith(".access.writer", e.Field, StringComparison.Ordinal);
        Assert.Contains("vmm, device, previous-vm", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The rows follow the hosts: with FWB and DIC on both ends, nothing in the debate can go wrong.</summary>
    [Fact]
    public void With_two_FWB_hosts_linux_6_17_and_module_param_pass_everything()
    {
        var text = DemoScenario.Text().Edit("cpu: neoverse-n1", "cpu: neoverse-v1");
        var scenario = ScenarioLoader.Parse(text, "demo-two-fwb.yaml");
        foreach (var (design, variant) in new[] { ("linux-6.17", ""), ("proposal-module-param", "param=on") })
        {
            var v = DesignCatalog.VariantsOf(design).Single(x => x.Label == variant);
            var row = ScenarioRunner.RunOnce(scenario, DesignCatalog.DefaultRef(design), v).Scorecard;
            Assert.True(row.NoFaultTimeDeath && row.CacheableWherePossible && row.NoMismatchedAlias && row.NoImpossibleMaintenance && row.ClearMigrationSemantics,
                $"{design} {variant}: {string.Join("; ", row.Evidence.Where(e => !e.Value.Holds).SelectMany(e => e.Value.Evidence))}");
        }
    }

    /// <summary>Raw ID registers: FWB present but DIC clear is still not enough (rule 1).</summary>
    [Fact]
    public void Rule1_a_host_with_FWB_but_no_DIC_cannot_map_usemem_cacheable()
    {
        var text = DemoScenario.Text().Edit("cpu: neoverse-n1", "cpu: { preset: neoverse-v2, ctrEl0: 0x90040004 }");
        var scenario = ScenarioLoader.Parse(text, "demo-fwb-no-dic.yaml");
        var run = ScenarioRunner.RunOnce(scenario, new DesignRef("linux-6.17"), RunVariant.Default);
        var start = run.Steps.OfType<StartResult>().Single(s => s.Label == "altra-start");
        var usemem = start.Regions.Single(r => r.Region == "gpu0.usemem");
        Assert.Equal(RegionOutcome.Failed, usemem.Outcome);
        Assert.Equal(Kernel.Kvm.Uapi.Errno.EINVAL, usemem.Errno);
        Assert.Equal("0", run.Hosts.Single(h => h.Name == "altra").Cap243Vm);
    }

    /// <summary>
    /// Property 3 judges cacheable device memory the guest itself maps write-back. With FWB a Normal stage 2 (rule 9,
    /// MemAttr 0b0110) forces write-back whatever the guest's MAIR says, so linux-6.17 passes either way; linux-6.9
    /// demotes usemem to Device (rule 18), which fails the property where the guest asked for write-back and is not
    /// held against the design where the guest mapped the memory Device-nGnRE itself.
    /// </summary>
    [Theory]
    [InlineData("linux-6.17", "0x04", true)]
    [InlineData("linux-6.17", "0xFF", true)]
    [InlineData("linux-6.9", "0x04", true)]
    [InlineData("linux-6.9", "0xFF", false)]
    public void Property3_judges_only_what_the_guest_maps_write_back(string design, string mair, bool holds)
    {
        var text = $$"""
            name: guest-mair
            hosts:
              grace:
                cpu: neoverse-v2
                design: {{design}}
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } }
            vms:
              vm:
                host: grace
                memory: [ { name: ram, gpa: 0x40000000, size: 16MiB } ]
                devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
            steps:
              - start: { vm: vm, host: grace }
              - { id: touch, access: { vm: vm, region: gpu0.usemem, mair: {{mair}}, type: [read, write] } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "guest-mair.yaml"), DesignCatalog.DefaultRef(design), RunVariant.Default);
        var view = run.Steps.OfType<AccessResult>().Single(a => a.Label == "touch").Region;
        Assert.All(view.Accesses, a => Assert.Equal(AccessOutcome.Ok, a.Outcome));
        Assert.Equal(design == "linux-6.17" ? KvmS2MemType.Normal : KvmS2MemType.DeviceNGnRE, view.Stage2);
        Assert.Equal(design == "linux-6.17", view.EffectiveWriteBack); // FWB forces write-back over any stage-1 type
        Assert.Equal(holds, run.Scorecard.CacheableWherePossible);
    }
}
