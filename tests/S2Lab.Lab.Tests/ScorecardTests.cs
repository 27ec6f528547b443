using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Judging;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scorecard;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>The scorecard computation on hand-made results: each property reacts to exactly the facts it is defined on.</summary>
public class ScorecardTests
{
    private static readonly VmaFacts Usemem = new("pfnmap", true, false, true, "VM_PFNMAP|VM_IO, MT_NORMAL");
    private static readonly VmaFacts Ram = new("anon", true, false, false, "anonymous, MT_NORMAL");

    private static HostFacts Host(string name, bool fwb, string cap = "1", string sys = "EINVAL") =>
        new(name, "cpu", "preset", fwb, true, true, "d", cap, sys, "0", "0");

    private static RegionAccessResult View(string host, VmaFacts vma, KvmS2MemType? s2, string? effective, bool cacheable, AccessOutcome outcome = AccessOutcome.Ok,
        Errno errno = Errno.None, CmoRecord? cmo = null, bool accepted = true, bool? writeBack = null, IReadOnlyList<HazardRecord>? hazards = null) =>
        new("vm", host, "r", "k", 0xFF, vma, accepted, [new AccessRecord(S2AccessKind.Read, outcome, errno, null, "")], s2, s2?.ToString(), effective, cacheable, writeBack ?? cacheable,
            cmo ?? CmoRecord.NoneNeeded, hazards ?? [], []);

    private static HazardRecord Alias(AliasCause cause) => new("mismatched-alias", "the host maps it cacheable") { Cause = cause };

    private static ScorecardRow Score(IReadOnlyList<HostFacts> hosts, params RegionAccessResult[] views) =>
        ScorecardCalculator.Compute("d", "", hosts, views.Select((v, i) => (StepResult)new AccessResult(i, $"s{i}", v)).ToList());

    [Fact]
    public void Nothing_to_judge_holds()
    {
        var row = Score([Host("h", true)]);
        Assert.True(row.EarlyDiscovery && row.NoFaultTimeDeath && row.CacheableWherePossible && row.NoMismatchedAlias && row.NoImpossibleMaintenance && row.ClearMigrationSemantics);
    }

    [Fact]
    public void An_EFAULT_on_an_accepted_memslot_is_fault_time_death_unless_the_VMM_changed_the_mapping()
    {
        var death = View("h", Usemem, null, null, false, AccessOutcome.Efault, Errno.EFAULT);
        Assert.False(Score([Host("h", false, "0")], death).NoFaultTimeDeath);
        Assert.True(Score([Host("h", false, "0")], death with { MappingChangedByVmm = true }).NoFaultTimeDeath);
    }

    /// <summary>
    /// Property 4 counts the mismatched-alias hazards the Lab judged from events (Judging.Hazards) whose cause is
    /// stage 2; it no longer re-derives them from the view's VMA and stage-2 type, so the views carry the hazard the
    /// access had. Same three cells as before; a guest-caused alias does not fail the design.
    /// </summary>
    [Fact]
    public void A_non_cacheable_stage_2_over_host_cacheable_memory_is_a_mismatched_alias()
    {
        Assert.False(Score([Host("h", true)], View("h", Usemem, KvmS2MemType.NormalNc, "Normal-NC", false, hazards: [Alias(AliasCause.Stage2)])).NoMismatchedAlias);
        Assert.True(Score([Host("h", true)], View("h", Usemem with { Cacheable = false }, KvmS2MemType.NormalNc, "Normal-NC", false)).NoMismatchedAlias);
        Assert.True(Score([Host("h", true)], View("h", Ram, KvmS2MemType.Normal, "Normal-WB", true)).NoMismatchedAlias);
        Assert.True(Score([Host("h", true)], View("h", Ram, KvmS2MemType.Normal, "Normal-NC", false, hazards: [Alias(AliasCause.GuestStage1)])).NoMismatchedAlias);
    }

    [Fact]
    public void Impossible_maintenance_comes_from_the_CMO_record()
    {
        var cmo = new CmoRecord(["DcacheCleanInvalPoc"], false, "no kernel VA");
        Assert.False(Score([Host("h", false, "0")], View("h", Usemem, KvmS2MemType.Normal, "Normal-WB", true, cmo: cmo)).NoImpossibleMaintenance);
        Assert.True(Score([Host("h", false, "0")], View("h", Usemem, KvmS2MemType.Normal, "Normal-WB", true, cmo: cmo with { Possible = true })).NoImpossibleMaintenance);
    }

    [Fact]
    public void Cacheable_where_possible_only_judges_hosts_with_FWB_and_DIC()
    {
        var demoted = View("h", Usemem, KvmS2MemType.DeviceNGnRE, "Device-nGnRE", false);
        Assert.False(Score([Host("h", true)], demoted).CacheableWherePossible);
        Assert.True(Score([Host("h", false, "0")], demoted).CacheableWherePossible);
        // Cacheable is not enough: property 3 asks for Normal write-back, and write-through is cacheable but not that.
        var writeThrough = View("h", Usemem, KvmS2MemType.Normal, "Normal-WT", true, writeBack: false);
        Assert.False(Score([Host("h", true)], writeThrough).CacheableWherePossible);
        Assert.True(Score([Host("h", true)], View("h", Usemem, KvmS2MemType.Normal, "Normal-WB", true)).CacheableWherePossible);
    }

    [Fact]
    public void Early_discovery_needs_a_recognized_capability_that_predicts_the_mapping()
    {
        var normal = View("h", Usemem, KvmS2MemType.Normal, "Normal-WB", true);
        var demoted = View("h", Usemem, KvmS2MemType.DeviceNGnRE, "Device-nGnRE", false);
        Assert.True(Score([Host("h", true, "1")], normal).EarlyDiscovery);
        Assert.False(Score([Host("h", true, "0")], normal).EarlyDiscovery);
        Assert.True(Score([Host("h", false, "0")], demoted with { MemslotAccepted = false }).EarlyDiscovery);
        // Unrecognized: 0 on both fds, exactly like an unknown capability.
        Assert.False(Score([Host("h", true, "0", "0")], demoted).EarlyDiscovery);
        // A VMM that chose not to ask for cacheable memory says nothing about whether it would have worked.
        Assert.True(Score([Host("h", true, "1")], demoted with { CacheableDeclined = true }).EarlyDiscovery);
    }

    [Fact]
    public void Migration_semantics_break_on_changed_types_or_failures_after_switchover()
    {
        MigrateResult M(MigrationVerdict outcome) => new(0, "m", "vm", "a", "b", "p", outcome, "", "", Errno.None, [], [], [], [], [], null, "");
        var hosts = new[] { Host("a", true), Host("b", false, "0") };
        foreach (var (outcome, holds) in new[] { (MigrationVerdict.Refused, true), (MigrationVerdict.SetupFailed, true), (MigrationVerdict.SucceededSameTypes, true), (MigrationVerdict.SucceededChangedTypes, false), (MigrationVerdict.FailedAfterSwitchover, false) })
            Assert.Equal(holds, ScorecardCalculator.Compute("d", "", hosts, [M(outcome)]).ClearMigrationSemantics);
    }

    [Fact]
    public void Each_verdict_is_stored_once_and_every_property_needs_one()
    {
        var hosts = new[] { Host("h", true) };
        var death = View("h", Ram, null, null, false, AccessOutcome.Efault, Errno.EFAULT);
        var row = Score(hosts, death);
        bool[] typed = [row.EarlyDiscovery, row.NoFaultTimeDeath, row.CacheableWherePossible, row.NoMismatchedAlias, row.NoImpossibleMaintenance, row.ClearMigrationSemantics];
        Assert.Equal(ScorecardRow.Properties.Select(p => row.Evidence[p.Json].Holds), typed);
        Assert.False(row.NoFaultTimeDeath);
        Assert.Equal(ScorecardRow.Properties.Select(p => p.Json), row.Evidence.Keys);

        var missing = row.Evidence.Where(kv => kv.Key != "noFaultTimeDeath").ToDictionary();
        Assert.Throws<ArgumentException>(() => new ScorecardRow("d", "", missing));
    }

    [Fact]
    public void Property1_fails_when_capability_243_says_1_and_the_memslot_is_refused()
    {
        // The VMM asked for cacheable device memory on a host whose VM fd promised it, and never got a memslot: the
        // capability did not predict the outcome (nothing was seen mapped, so "refused" is the only evidence).
        var refused = View("h", Usemem, null, null, false, accepted: false);
        Assert.False(Score([Host("h", true, "1")], refused).EarlyDiscovery);
        // The same refusal where the capability says 0 is what it predicted.
        Assert.True(Score([Host("h", false, "0")], refused).EarlyDiscovery);
    }

    [Theory]
    [InlineData((byte)0x04)] // Device-nGnRE
    [InlineData((byte)0x44)] // Normal Non-cacheable
    [InlineData((byte)0xBB)] // Normal Write-Through: cacheable, not write-back
    public void Property3_does_not_judge_memory_the_guest_itself_maps_without_write_back(byte mair)
    {
        // A demoting design (Device stage 2) over memory the guest mapped non-write-back itself: the guest did not ask
        // for what property 3 checks.
        var guestChoice = View("h", Usemem, KvmS2MemType.DeviceNGnRE, "Device-nGnRE", false) with { Mair = mair };
        Assert.True(Score([Host("h", true)], guestChoice).CacheableWherePossible);
        // The control: with a write-back MAIR the same demotion fails the property.
        Assert.False(Score([Host("h", true)], guestChoice with { Mair = 0xFF }).CacheableWherePossible);
    }

    /// <summary>A start step on host h whose one cacheable usemem region failed with EINVAL, for the reason given.</summary>
    private static StartResult RefusedStart(string? vmmRequest) =>
        new(0, "start", "vm", "h", Vmm.StartOutcome.Failed, "", Errno.EINVAL, "1",
            [new RegionSetupResult("gpu0.usemem", "nvgrace-usemem", 0x40_0000_0000, 1UL << 30, Usemem, KvmMemFlags.None, RegionOutcome.Failed, Errno.EINVAL, "KVM_SET_USER_MEMORY_REGION2 slot 1 failed with EINVAL")
            {
                RefusedForVmmRequest = vmmRequest,
            }]);

    [Fact]
    public void Property3_counts_a_refused_memslot_of_cacheable_device_memory_unless_the_VMM_request_caused_it()
    {
        // A refusal on a host with FWB and DIC: the guest did not get the memory as Normal write-back.
        var byKvm = ScorecardCalculator.Compute("d", "", [Host("h", true)], [RefusedStart(null)]);
        Assert.False(byKvm.CacheableWherePossible);
        // The same refusal for what the VMM asked (MTE, or dirty logging of a VM_PFNMAP VMA: rule 6 refuses it in every
        // design and for any memory type): no design could have mapped it, so it is not judged, and the evidence says so.
        var byRequest = ScorecardCalculator.Compute("d", "", [Host("h", true)], [RefusedStart("the VMM enabled MTE and usemem lacks VM_MTE_ALLOWED (rule 6, in every design)")]);
        Assert.True(byRequest.CacheableWherePossible);
        Assert.Contains(byRequest.Evidence["cacheableWherePossible"].Evidence, e => e.Contains("not judged", StringComparison.Ordinal) && e.Contains("VM_MTE_ALLOWED", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("mte-vm.yaml", "gpu", "VM_MTE_ALLOWED")]
    [InlineData("dirty-log-device.yaml", "start-logged", "dirty logging")]
    public void Property3_does_not_count_the_memslots_the_scenarios_VMM_request_made_KVM_refuse(string file, string step, string why)
    {
        // Both refusals happen before the design sees the VMA (rule 6), so every design gets the same EINVAL: they do
        // not tell designs apart, and linux-6.17 (which maps usemem Normal on this host) holds property 3.
        var run = ScenarioRunner.RunOnce(ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, file)), new DesignRef("linux-6.17"), RunVariant.Default);
        var refused = run.Steps.OfType<StartResult>().Single(s => s.Label == step).Regions.Single(r => r.Region == "gpu0.usemem");
        Assert.Equal(Errno.EINVAL, refused.Errno);
        Assert.Contains(why, refused.RefusedForVmmRequest, StringComparison.Ordinal);
        Assert.True(run.Scorecard.CacheableWherePossible);
    }

    [Fact]
    public void Rule6_the_VMM_request_explains_only_the_refusals_made_before_the_design_sees_the_VMA()
    {
        static Vma V(VmFlags flags) => new(0x1000_0000, 0x2000_0000, flags, default, 0, null!, "usemem");
        var pfnmap = V(VmFlags.VM_PFNMAP | VmFlags.VM_IO);
        var mixed = V(VmFlags.VM_MIXEDMAP);
        var log = KvmMemFlags.LOG_DIRTY_PAGES;
        Assert.Contains("VM_MTE_ALLOWED", VmmRequests.RefusalCause(pfnmap, KvmMemFlags.None, mte: true, Errno.EINVAL), StringComparison.Ordinal);
        Assert.Contains("dirty logging", VmmRequests.RefusalCause(pfnmap, log, mte: false, Errno.EINVAL), StringComparison.Ordinal);
        // Not the VMM's request: dirty logging of VM_MIXEDMAP and MTE over a VMA that allows tags pass rule 6, so an
        // EINVAL there is the design's; and an errno other than rule 6's EINVAL is not these checks'.
        Assert.Null(VmmRequests.RefusalCause(mixed, log, mte: false, Errno.EINVAL));
        Assert.Null(VmmRequests.RefusalCause(V(VmFlags.VM_PFNMAP | VmFlags.VM_MTE_ALLOWED), KvmMemFlags.None, mte: true, Errno.EINVAL));
        Assert.Null(VmmRequests.RefusalCause(pfnmap, KvmMemFlags.None, mte: false, Errno.EINVAL));
        Assert.Null(VmmRequests.RefusalCause(pfnmap, log, mte: true, Errno.EFAULT));
    }
}
