using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scorecard;

/// <summary>One property's verdict and the evidence behind it (the steps that decided it).</summary>
public sealed record PropertyVerdict(bool Holds, IReadOnlyList<string> Evidence);

/// <summary>One scorecard property of docs/rules.md: its number, its JSON name, and its heading in tables.</summary>
public sealed record ScorecardProperty(int Number, string Json, string Name)
{
    /// <summary>"1 early discovery": the heading tables print.</summary>
    public string Title => $"{Number} {Name}";
}

/// <summary>
/// The scorecard (docs/rules.md) for one design and variant, computed from one run of a scenario. <see cref="Evidence"/>
/// holds each property's verdict and why (the one place a verdict is stored); the six booleans that
/// <c>--format json</c> prints read it.
/// </summary>
public sealed record ScorecardRow(string Design, string Variant, IReadOnlyDictionary<string, PropertyVerdict> Evidence)
{
    public static readonly ScorecardProperty EarlyDiscoveryProperty = new(1, "earlyDiscovery", "early discovery");
    public static readonly ScorecardProperty NoFaultTimeDeathProperty = new(2, "noFaultTimeDeath", "no fault-time death");
    public static readonly ScorecardProperty CacheableWherePossibleProperty = new(3, "cacheableWherePossible", "cacheable where possible");
    public static readonly ScorecardProperty NoMismatchedAliasProperty = new(4, "noMismatchedAlias", "no mismatched alias");
    public static readonly ScorecardProperty NoImpossibleMaintenanceProperty = new(5, "noImpossibleMaintenance", "no impossible maintenance");
    public static readonly ScorecardProperty ClearMigrationSemanticsProperty = new(6, "clearMigrationSemantics", "clear migration semantics");

    /// <summary>The six properties, in docs/rules.md order.</summary>
    public static readonly IReadOnlyList<ScorecardProperty> Properties =
    [
        EarlyDiscoveryProperty, NoFaultTimeDeathProperty, CacheableWherePossibleProperty,
        NoMismatchedAliasProperty, NoImpossibleMaintenanceProperty, ClearMigrationSemanticsProperty,
    ];

    /// <summary>Each property's verdict by its JSON name, in docs/rules.md order; every property has one.</summary>
    public IReadOnlyDictionary<string, PropertyVerdict> Evidence { get; } =
        Properties.All(p => Evidence.ContainsKey(p.Json)) && Evidence.Count == Properties.Count
            ? Evidence
            : throw new ArgumentException($"a scorecard row needs exactly a verdict for each of {string.Join(", ", Properties.Select(p => p.Json))}", nameof(Evidence));

    public bool EarlyDiscovery => Holds(EarlyDiscoveryProperty);

    public bool NoFaultTimeDeath => Holds(NoFaultTimeDeathProperty);

    public bool CacheableWherePossible => Holds(CacheableWherePossibleProperty);

    public bool NoMismatchedAlias => Holds(NoMismatchedAliasProperty);

    public bool NoImpossibleMaintenance => Holds(NoImpossibleMaintenanceProperty);

    public bool ClearMigrationSemantics => Holds(ClearMigrationSemanticsProperty);

    /// <summary>"design" or "design [variant]": the run's name in every report.</summary>
    public string Name => Variant.Length == 0 ? Design : $"{Design} [{Variant}]";

    /// <summary>Whether <paramref name="property"/> holds.</summary>
    public bool Holds(ScorecardProperty property) => Evidence[property.Json].Holds;

    /// <summary>A property's value by its JSON name.</summary>
    public bool Get(string property) =>
        Evidence.TryGetValue(property, out var v) ? v.Holds : throw new ArgumentException($"unknown property {property}", nameof(property));
}

/// <summary>Computes a <see cref="ScorecardRow"/> from what a run observed. Nothing here knows design names.</summary>
public static class ScorecardCalculator
{
    public static ScorecardRow Compute(string design, string variant, IReadOnlyList<HostFacts> hosts, IReadOnlyList<StepResult> steps)
    {
        var hostByName = hosts.ToDictionary(h => h.Name);
        var regionViews = RegionViews(steps).ToList();

        var p1 = EarlyDiscovery(hosts, regionViews);
        var p2 = NoFaultTimeDeath(regionViews);
        var p3 = CacheableWherePossible(hostByName, steps, regionViews);
        var p4 = NoMismatchedAlias(regionViews);
        var p5 = NoImpossibleMaintenance(regionViews);
        var p6 = ClearMigrationSemantics(hostByName, steps);
        PropertyVerdict[] verdicts = [p1, p2, p3, p4, p5, p6];
        var evidence = new Dictionary<string, PropertyVerdict>();
        for (int i = 0; i < verdicts.Length; i++)
            evidence[ScorecardRow.Properties[i].Json] = verdicts[i];
        return new ScorecardRow(design, variant, evidence);
    }

    /// <summary>Every region view of the run, with the step it came from: access steps and post-switch-over touches.</summary>
    private static IEnumerable<(StepResult Step, RegionAccessResult View)> RegionViews(IReadOnlyList<StepResult> steps)
    {
        foreach (var s in steps)
        {
            if (s is AccessResult a)
                yield return (s, a.Region);
            else if (s is MigrateResult m)
            {
                foreach (var v in m.AfterSwitchover)
                    yield return (s, v);
            }
        }
    }

    private static bool IsCacheableDeviceMemory(RegionAccessResult v) => v.Vma is { IsSpecial: true, Cacheable: true };

    /// <summary>
    /// Property 1: on every host where the run saw what happens to cacheable device memory, capability 243 is
    /// recognized (answers unlike an unknown capability) and its VM-fd value predicts it: 1 iff the guest got a
    /// cacheable stage-2 mapping of cacheable device memory there.
    /// </summary>
    private static PropertyVerdict EarlyDiscovery(IReadOnlyList<HostFacts> hosts, List<(StepResult Step, RegionAccessResult View)> views)
    {
        var failures = new List<string>();
        var passes = new List<string>();
        foreach (var h in hosts)
        {
            var asked = views.Where(x => x.View.Host == h.Name && IsCacheableDeviceMemory(x.View) && !x.View.CacheableDeclined).ToList();
            var seen = asked.Where(x => x.View.MemslotAccepted).ToList();
            var refused = asked.Any(x => !x.View.MemslotAccepted);
            if (seen.Count == 0 && !refused)
                continue;
            bool worked = seen.Any(x => x.View.Stage2 == KvmS2MemType.Normal);
            if (!h.CapabilityRecognized)
            {
                failures.Add($"{h.Name}: capability 243 answers {h.Cap243Vm} on a VM fd and {h.Cap243System} on /dev/kvm, exactly as an unknown capability does; the VMM cannot learn anything before running");
                continue;
            }

            bool says = h.Cap243Vm == "1";
            if (says != worked)
            {
                var first = seen.FirstOrDefault(x => x.View.Stage2 == KvmS2MemType.Normal == worked);
                failures.Add($"{h.Name}: capability 243 = {h.Cap243Vm}, but cacheable device memory {(worked ? "was" : "was not")} mapped cacheable ({first.Step?.Label ?? "memslot refused"})");
            }
            else
            {
                passes.Add($"{h.Name}: capability 243 = {h.Cap243Vm}, and cacheable device memory {(worked ? "was" : "was not")} mapped cacheable");
            }
        }

        var evidence = failures.Concat(passes).ToList();
        if (evidence.Count == 0)
            evidence.Add("no cacheable device memory in this scenario");
        return new PropertyVerdict(failures.Count == 0, evidence);
    }

    /// <summary>
    /// Property 2: no guest access on a memslot the host accepted ended with KVM_RUN failing with EFAULT (accesses to
    /// regions the VMM itself unmapped or mprotected afterwards do not count).
    /// </summary>
    private static PropertyVerdict NoFaultTimeDeath(List<(StepResult Step, RegionAccessResult View)> views)
    {
        var deaths = views
            .Where(x => x.View.MemslotAccepted && !x.View.MappingChangedByVmm && x.View.Accesses.Any(a => a.Errno == Kernel.Kvm.Uapi.Errno.EFAULT))
            .Select(x => $"{x.Step.Label}: {x.View.Region} on {x.View.Host}: memslot accepted, then KVM_RUN failed with EFAULT")
            .ToList();
        return new PropertyVerdict(deaths.Count == 0, deaths.Count == 0 ? ["no accepted memslot failed a guest access with EFAULT"] : deaths);
    }

    /// <summary>
    /// Property 3: on every host with FWB and DIC, every cacheable device region the guest touched with a cacheable
    /// stage-1 attribute was seen as Normal write-back; regions the VMM or KVM refused there count as failures, except
    /// a memslot KVM refused for what the VMM asked (MTE, dirty logging of a VM_PFNMAP VMA: rule 6, in every design and
    /// for any memory type), where no design could have mapped the memory at all.
    /// </summary>
    private static PropertyVerdict CacheableWherePossible(Dictionary<string, HostFacts> hosts, IReadOnlyList<StepResult> steps, List<(StepResult Step, RegionAccessResult View)> views)
    {
        var failures = new List<string>();
        var notJudged = new List<string>();
        int checkedCount = 0;
        foreach (var (step, v) in views)
        {
            if (!hosts.TryGetValue(v.Host, out var h) || !h.SupportsCacheablePfnmap || !IsCacheableDeviceMemory(v) || !IsWriteBackMair(v.Mair))
                continue;
            checkedCount++;
            if (!v.MemslotAccepted)
                failures.Add($"{step.Label}: {v.Region} on {v.Host} (FWB and DIC present) has no memslot");
            else if (!v.EffectiveWriteBack)
                failures.Add($"{step.Label}: {v.Region} on {v.Host} (FWB and DIC present): the guest sees {v.Effective ?? LabText.None}");
        }

        foreach (var s in steps)
        {
            var (host, regions) = s switch
            {
                StartResult st => (st.Host, st.Regions),
                MigrateResult m => (m.To, m.DestinationRegions),
                _ => ("", (IReadOnlyList<RegionSetupResult>)[]),
            };
            if (!hosts.TryGetValue(host, out var h) || !h.SupportsCacheablePfnmap)
                continue;
            foreach (var r in regions.Where(r => r.Vma is { IsSpecial: true, Cacheable: true } && r.Outcome is not (RegionOutcome.Created or RegionOutcome.Skipped)))
            {
                if (r.RefusedForVmmRequest is { } why)
                {
                    notJudged.Add($"{s.Label}: {r.Region} on {host} not judged: {r.Text}, {why}");
                    continue;
                }

                checkedCount++;
                failures.Add($"{s.Label}: {r.Region} on {host} (FWB and DIC present): {r.Text} {r.Detail}".TrimEnd());
            }
        }

        var ok = checkedCount == 0 ? "no cacheable device memory touched on a host with FWB and DIC" : "every cacheable device region on a host with FWB and DIC was Normal write-back";
        return new PropertyVerdict(failures.Count == 0, failures.Count == 0 ? [ok, .. notJudged.Distinct()] : failures.Distinct().ToList());
    }

    /// <summary>
    /// A guest MAIR attribute byte for Normal memory, Inner and Outer Write-Back (0xFF, 0xEE, ..., 0xF0 tagged), as
    /// Arch decodes it (FEAT_XS and FEAT_MTE2 on, so XS and tagged forms read as what they are).
    /// </summary>
    internal static bool IsWriteBackMair(byte mair) => Mair.Decode(mair, AttributeFeatures.Xs | AttributeFeatures.Mte2).Attributes.IsWriteBack;

    /// <summary>
    /// Property 4: no guest access saw a mismatched alias caused by stage 2 (<see cref="Judging.Hazards.MismatchedAlias"/>
    /// with <see cref="Judging.AliasCause.Stage2"/>): a design is judged by what KVM forces, not by the guest's own MAIR.
    /// </summary>
    private static PropertyVerdict NoMismatchedAlias(List<(StepResult Step, RegionAccessResult View)> views)
    {
        var bad = views
            .SelectMany(x => x.View.Hazards.Where(h => h.Cause == Judging.AliasCause.Stage2)
                .Select(h => $"{x.Step.Label}: {x.View.Region} on {x.View.Host}: {h.Detail}"))
            .Distinct()
            .ToList();
        // Issue 12: also an observed stale read around the cache (B2.11) where stage 2 made the access non-cacheable
        // (a design is judged by what KVM forces, not by the guest's own MAIR or SCTLR_EL1).
        bad.AddRange(StaleReads(views.Where(x => x.View.Stage2 is KvmS2MemType.DeviceNGnRE or KvmS2MemType.NormalNc).ToList(), a => a.Path == "bypass"));
        return new PropertyVerdict(bad.Count == 0, bad.Count == 0 ? ["no non-cacheable stage-2 mapping of host-cacheable memory"] : bad);
    }

    /// <summary>Stale reads (issue 12) among <paramref name="views"/> that <paramref name="which"/> selects, as evidence.</summary>
    private static IEnumerable<string> StaleReads(List<(StepResult Step, RegionAccessResult View)> views, Func<AccessRecord, bool> which) =>
        views.SelectMany(x => x.View.Accesses.Where(a => a.Stale && which(a))
            .Select(a => $"{x.Step.Label}: {x.View.Region} on {x.View.Host}: stale read 0x{a.Value:X16}, expected 0x{a.Expected:X16} ({a.Path})"));

    /// <summary>Property 5: no stage-2 mapping needed a cache maintenance operation the host could not perform.</summary>
    private static PropertyVerdict NoImpossibleMaintenance(List<(StepResult Step, RegionAccessResult View)> views)
    {
        var bad = views
            .Where(x => x.View.Cmo.Needed.Count > 0 && !x.View.Cmo.Possible)
            .Select(x => $"{x.Step.Label}: {x.View.Region} on {x.View.Host}: needs {string.Join(", ", x.View.Cmo.Needed)}, impossible: {x.View.Cmo.Why}")
            .ToList();
        // Issue 12: also an observed stale read of a page whose needed CMO was impossible.
        bad.AddRange(StaleReads(views.Where(x => x.View.Cmo.Needed.Count > 0 && !x.View.Cmo.Possible).ToList(), _ => true));
        return new PropertyVerdict(bad.Count == 0, bad.Count == 0 ? ["every needed CMO could be performed"] : bad);
    }

    /// <summary>
    /// Property 6: every migration between a host with FWB and DIC and one without either kept every memory type
    /// or was stopped before switch-over; a changed type or a failure after switch-over breaks it.
    /// </summary>
    private static PropertyVerdict ClearMigrationSemantics(Dictionary<string, HostFacts> hosts, IReadOnlyList<StepResult> steps)
    {
        var failures = new List<string>();
        var passes = new List<string>();
        foreach (var m in steps.OfType<MigrateResult>())
        {
            bool across = hosts.TryGetValue(m.From, out var a) && hosts.TryGetValue(m.To, out var b) && a.SupportsCacheablePfnmap != b.SupportsCacheablePfnmap;
            bool bad = m.Outcome is MigrationVerdict.SucceededChangedTypes or MigrationVerdict.FailedAfterSwitchover;
            if (bad)
            {
                var changes = m.Changes.Count == 0 ? "" : $" ({string.Join("; ", m.Changes.Select(c => $"{c.Region}: {c.Before} -> {c.After}"))})";
                failures.Add($"{m.Label}: {m.From} -> {m.To}: {LabText.Word(m.Outcome)}{changes}{(m.Reason.Length > 0 ? $": {m.Reason}" : "")}");
            }
            else
            {
                passes.Add($"{m.Label}: {m.From} -> {m.To}{(across ? " (FWB+DIC differs)" : "")}: {LabText.Word(m.Outcome)}");
            }
        }

        var evidence = failures.Concat(passes).ToList();
        if (evidence.Count == 0)
            evidence.Add("no migration in this scenario");
        return new PropertyVerdict(failures.Count == 0, evidence);
    }
}
