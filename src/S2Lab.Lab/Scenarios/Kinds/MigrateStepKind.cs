using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary><c>migrate</c>: live migration of a running VM to another host, as QEMU runs it (docs/scenario-schema.md).</summary>
internal sealed class MigrateStepKind : IStepKind
{
    private const ulong PageSize = 4096;

    public string Name => "migrate";

    public StepSpec? Read(StepReader r)
    {
        var (b, sc, path) = (r.B, r.Scenario, r.Path);
        var f = b.Map(r.Body, path);
        if (f is null)
            return null;
        var vm = sc.ResolveVm(f.Req("vm"), $"{path}.vm");
        var toNode = f.Req("to");
        var to = toNode is null ? null : sc.ResolveHost(toNode, $"{path}.to");
        var policy = b.Enum(f.Opt("policy"), $"{path}.policy", ScenarioLoader.PolicyWords);
        var rounds = b.Int(f.Opt("maxRounds"), $"{path}.maxRounds", 1, 1000) ?? 8;
        var threshold = b.Int(f.Opt("stopCopyPages"), $"{path}.stopCopyPages", 0, int.MaxValue) ?? 4;
        var dirty = new List<DirtySpec>();
        var items = b.List(f.Opt("dirty"), $"{path}.dirty");
        for (int i = 0; i < items.Count; i++)
        {
            var p = $"{path}.dirty[{i}]";
            var df = b.Map(items[i], p);
            if (df is null)
                continue;
            var regionNode = df.Req("region");
            var region = b.Str(regionNode, $"{p}.region");
            var offset = b.Size(df.Opt("offset"), $"{p}.offset") ?? 0;
            var pages = b.Int(df.Opt("pages"), $"{p}.pages", 1, 1 << 20) ?? 1;
            var dr = b.Int(df.Opt("rounds"), $"{p}.rounds", 1, 1000) ?? 1;
            df.Done();
            var rs = vm is null || region is null ? null : vm.Region(region);
            if (vm is not null && region is not null && rs is null)
                b.Error(regionNode!.Start, $"{p}.region", $"VM '{vm.Name}' has no region '{region}'");
            else if (rs is not null && !rs.IsRam)
                b.Error(regionNode!.Start, $"{p}.region", "only RAM is dirtied during pre-copy (device memory cannot be dirty-logged, rule 6)");
            else if (rs is not null && (offset % PageSize != 0 || offset > rs.Size || (ulong)pages > (rs.Size - offset) / PageSize))
                b.Error(items[i].Start, p, $"{pages} page(s) from offset 0x{offset:x} do not fit in region '{rs.Name}'");
            else if (rs is not null)
                dirty.Add(new DirtySpec(rs.Name, offset, pages, dr));
        }

        f.Done();
        if (vm is null || to is null)
            return null;
        return new MigrateStep(r.Index, r.Id, r.Body.Start, vm.Name, to.Name, policy, dirty, rounds, threshold);
    }

    public bool Check(StepSpec step, StepReader r)
    {
        var s = (MigrateStep)step;
        r.Scenario.CheckDevicesOn(r.Scenario.Vm(s.Vm), r.Scenario.Host(s.To), r.At("to"), $"{r.Path}.to");
        return true;
    }

    public IReadOnlyList<ExpectField> Expect { get; } =
    [
        new("outcome", ExpectFields.MigrationOutcomes, (r, _) => LabText.Word(((MigrateResult)r).Outcome),
            x => ExpectFields.MigrationOutcomes.Contains(x) ? null : $"'{x}' is not an outcome: {string.Join(", ", ExpectFields.MigrationOutcomes)}"),
        new("errno", null, (r, _) => LabText.Errno(((MigrateResult)r).Errno), ExpectField.ErrnoProblem, ExpectField.ErrnoMatches),
        // The failing call, compared as a prefix (the call name without its arguments).
        new("call", null, (r, _) => ((MigrateResult)r).FailedCall is { Length: > 0 } c ? c : "none",
            Match: (e, a) => a.StartsWith(e, StringComparison.OrdinalIgnoreCase)),
        new("changed", null, (r, _) => ((MigrateResult)r).Changes is { Count: > 0 } c ? string.Join(",", c.Select(x => x.Region)) : "none",
            Match: ExpectField.SetMatches),
        new("dataIntact", ["true", "false"], (r, _) => ((MigrateResult)r).DataIntact is { } b ? b ? "true" : "false" : "n/a",
            x => x is "true" or "false" ? null : "expected true or false"),
        new("deviceCopy", null, (r, _) => string.Join(",", ((MigrateResult)r).DeviceCopies.Where(c => c.Bytes > 0).Select(c => c.Region)),
            Match: ExpectField.SetMatches),
        // The regions (device memory and RAM) whose copy was observed stale (a word arrived other than the source's last write).
        new("staleCopy", null, (r, _) => ((MigrateResult)r).DeviceCopies.Concat(((MigrateResult)r).RamCopies ?? []).Where(c => c.StaleOffset is not null).Select(c => c.Region).ToList() is { Count: > 0 } c
            ? string.Join(",", c) : "none", Match: ExpectField.SetMatches),
    ];

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (MigrateStep)step;
        var st = run.Vms[s.Vm];
        var to = run.Hosts[s.To];
        // Not running: the source is the host it was last started on (or migrated to), and the reason says why.
        var from = st.LastHost;
        var policy = run.PolicyFor(st.Spec, to, s.Policy);
        var policyText = policy.ToString();
        // Every outcome shares these; each case below says what it adds.
        var result = new MigrateResult(s.Index, s.Label, s.Vm, from, s.To, policyText, MigrationVerdict.Refused, "", "", Errno.None, [], [], [], [], [], null, "");
        if (st.Vm is null || st.Dead)
        {
            var why = st.Vm is null ? $"the VM is not running: {st.NotRunningReason}" : $"the guest has already failed on {from}: {st.DeathReason}";
            return result with { Reason = why };
        }

        // A VMM that checks the capability also checks it on the source side: cacheable device memory in use
        // there must find cacheable support on the destination. The destination VMM's start does that check.
        var source = st.Vm;
        var sourceViews = st.LastViews.ToDictionary(kv => kv.Key, kv => kv.Value);
        // The last value written at each word on the source (the runner's shadow): what the copy must deliver.
        var written = st.Written.ToDictionary(kv => kv.Key, kv => kv.Value);
        var guest = new MigrationGuest(st, s, to);
        var destVmm = to.NewVmm(s.Vm);
        var report = Migration.Migrate(source, destVmm, policy, guest, new MigrationOptions(s.MaxRounds, s.StopCopyPages));
        result = result with { Reason = report.Reason, DestinationRegions = report.Destination?.Regions.Select(r => ScenarioRunner.RunState.Setup(to, destVmm, r, st.Spec.Mte)).ToList() ?? [] };
        switch (report.Outcome)
        {
            case MigrationOutcome.Refused:
                return result;
            case MigrationOutcome.SetupFailed:
                // The failed call and its errno are fields of their own: when the destination's setup failed, the
                // reason says where and what it means instead of repeating the call (the VMM's reason names it).
                var reason = report.Destination is { } d && d.FailedCall.Length > 0 && d.FailedCall == report.FailedCall
                    ? "the destination VMM's setup failed; the guest stays on the source"
                    : report.Reason;
                return result with { Outcome = MigrationVerdict.SetupFailed, Reason = reason, FailedCall = report.FailedCall, Errno = report.Errno, Rounds = report.Rounds };
        }

        var copies = report.DeviceCopies.Select(c => CopyRecord(c, sourceViews, written, guest.Arrived)).ToList();
        // RAM goes through the VMM's cacheable mapping too (pre-copy and stop-and-copy): a guest that wrote RAM around
        // the caches (stage-1 Normal-NC or Device, MMU off; without FWB stage 2 keeps that type) leaves a line the copy can
        // hit (B2.11). Judged from the bytes only: the words the source's last writes left against what arrived.
        var ramCopies = report.Destination!.Regions.Where(r => r.Config.IsRam && r.Outcome == RegionOutcome.Created)
            .Select(r => RamCopyRecord(r.Name, sourceViews, guest.Expected, guest.Arrived))
            .OfType<DeviceCopyRecord>().ToList();

        // Switched over: the VM now lives on the destination, and what the guest saw there is its latest view.
        st.MoveTo(report.DestinationVm!, to);
        var after = guest.After;
        foreach (var v in after)
            st.LastViews[v.Region] = v;
        var changes = new List<TypeChange>();
        foreach (var v in after)
        {
            if (sourceViews.TryGetValue(v.Region, out var before) && (before.Stage2 != v.Stage2 || before.Effective != v.Effective))
                changes.Add(new TypeChange(v.Region, MappingText(before), MappingText(v)));
        }

        result = result with { Rounds = report.Rounds, DeviceCopies = copies, AfterSwitchover = after, Changes = changes, RamCopies = ramCopies.Count > 0 ? ramCopies : null };
        if (report.Outcome == MigrationOutcome.FailedAfterSwitchover)
        {
            st.Dead = true;
            st.DeathReason = $"after migrating from {from}: {report.Reason}";
            return result with { Outcome = MigrationVerdict.FailedAfterSwitchover, Errno = guest.FailErrno };
        }

        // dataIntact judges what the guest finds on the destination before it writes again: the resume's first reads,
        // then a read of every other word the source left (guest.Expected), not the words the resume's writes restored.
        var data = st.VerifyData(guest.Expected, guest.FirstReads);
        return result with
        {
            Outcome = changes.Count == 0 ? MigrationVerdict.SucceededSameTypes : MigrationVerdict.SucceededChangedTypes,
            Reason = "",
            DataIntact = data.Intact,
            DataCheck = data.Check,
            Lost = data.Lost,
        };
    }

    /// <summary>"stage-2 type / what the guest sees", or why there is no mapping ("no mapping: read efault").</summary>
    private static string MappingText(RegionAccessResult v) =>
        v.Stage2 is not null || v.Effective is not null ? $"{LabText.Stage2(v.Stage2)} / {v.Effective ?? LabText.None}"
        : $"no mapping: {string.Join(", ", v.Accesses.Where(a => a.Outcome is not (AccessOutcome.Ok or AccessOutcome.NotRunning)).Select(a => a.ToString()).DefaultIfEmpty("not accessed"))}";

    /// <summary>
    /// A device region's copy as reports show it, with its stale-copy hazard (<see cref="Judging.Hazards.StaleCopy"/>):
    /// observed where a word the source's last write left arrived different at the destination
    /// (<paramref name="arrived"/>), possible where the guest wrote the region through a non-cacheable stage-2 mapping
    /// and the VMM's mapping is cacheable.
    /// </summary>
    private static DeviceCopyRecord CopyRecord(DeviceCopyReport c, Dictionary<string, RegionAccessResult> sourceViews,
        Dictionary<(string Region, ulong Offset), ulong> written, Dictionary<(string Region, ulong Offset), ulong> arrived)
    {
        var record = new DeviceCopyRecord(c.Region,
            $"{c.How}{(c.Copied ? $"; {c.Bytes >> 20} MiB read, {c.PagesWithData} page(s) with data" : "")}", c.Bytes, []);
        if (!c.Copied)
            return record;
        Judging.CopiedWord? wrong = null;
        foreach (var ((region, offset), want) in written.Where(w => w.Key.Region == c.Region).OrderBy(w => w.Key.Offset))
        {
            if (arrived.TryGetValue((region, offset), out var got) && got != want)
            {
                wrong = new Judging.CopiedWord(offset, got, want);
                break;
            }
        }

        var view = sourceViews.GetValueOrDefault(c.Region);
        var guestWrote = written.Keys.Any(k => k.Region == c.Region);
        if (Judging.Hazards.StaleCopy(c.Region, view?.Stage2, view?.Vma is { Cacheable: true }, guestWrote, wrong) is not { } h)
            return record;
        return record with
        {
            Hazards = [new HazardRecord(h.Name, h.Detail)],
            StaleOffset = wrong?.Offset,
            Copied = wrong?.Copied,
            Expected = wrong?.Expected,
        };
    }

    /// <summary>
    /// A RAM region's copy, where it was observed stale (<see cref="Judging.Hazards.StaleCopy"/> with bytes): the first
    /// word the source's last write left (<paramref name="expected"/>, pre-copy's writes included) that arrived different
    /// at the destination VMM's mapping. Null where every word arrived. Only observed: RAM is Normal at stage 2, so the
    /// possible form (a non-cacheable stage 2) never applies; a guest's own non-cacheable stage 1 is not judged possible.
    /// </summary>
    private static DeviceCopyRecord? RamCopyRecord(string region, Dictionary<string, RegionAccessResult> sourceViews,
        Dictionary<(string Region, ulong Offset), ulong> expected, Dictionary<(string Region, ulong Offset), ulong> arrived)
    {
        Judging.CopiedWord? wrong = null;
        foreach (var ((r, offset), want) in expected.Where(w => w.Key.Region == region).OrderBy(w => w.Key.Offset))
        {
            if (arrived.TryGetValue((r, offset), out var got) && got != want)
            {
                wrong = new Judging.CopiedWord(offset, got, want);
                break;
            }
        }

        var view = sourceViews.GetValueOrDefault(region);
        if (wrong is null || Judging.Hazards.StaleCopy(region, view?.Stage2, view?.Vma is { Cacheable: true }, true, wrong) is not { } h)
            return null;
        return new DeviceCopyRecord(region, "RAM pre-copy through the VMM's mapping", 0, [new HazardRecord(h.Name, h.Detail)])
        {
            StaleOffset = wrong.Value.Offset,
            Copied = wrong.Value.Copied,
            Expected = wrong.Value.Expected,
        };
    }

    /// <summary>The guest during a migration: writes RAM during pre-copy, touches its memory again after switch-over.</summary>
    private sealed class MigrationGuest(ScenarioRunner.VmState st, MigrateStep step, LabHost destination) : IMigrationGuest
    {
        public List<RegionAccessResult> After { get; } = [];

        public Errno FailErrno { get; private set; }

        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            foreach (var d in step.Dirty.Where(d => round <= d.Rounds))
            {
                for (int p = 0; p < d.Pages; p++)
                {
                    var off = d.Offset + ((ulong)p * PAGE_SIZE);
                    var value = 0xD1_0000_0000_0000UL | ((ulong)(uint)round << 32) | (uint)p;
                    st.Touch(d.Region, off, 0xFF, [S2AccessKind.Write], value, 0, record: false);
                }
            }
        }

        /// <summary>
        /// What the device copy delivered: for each word written on the source in a device memory region, what the
        /// destination VMM's mapping holds at switch-over, before the guest runs there.
        /// </summary>
        public Dictionary<(string Region, ulong Offset), ulong> Arrived { get; } = [];

        /// <summary>The last value written at each word on the source, at switch-over (after pre-copy's writes).</summary>
        public Dictionary<(string Region, ulong Offset), ulong> Expected { get; } = [];

        /// <summary>
        /// The resumed guest's first read of each word it reads again on the destination (the resume reads before it
        /// writes): what the guest found there, before its own writes could restore it. Null: the read returned no value.
        /// </summary>
        public Dictionary<(string Region, ulong Offset), ulong?> FirstReads { get; } = [];

        public GuestResumeReport ResumeOn(VirtualMachine target)
        {
            foreach (var (key, value) in st.Written)
                Expected[key] = value;
            foreach (var (region, offset) in st.Written.Keys)
            {
                if (target.Region(region) is { IsDeviceRegisters: false } r && destination.PeekThroughVmm(target.Host, r, offset) is { } v)
                    Arrived[(region, offset)] = v;
            }

            st.MoveTo(target, destination);
            foreach (var (region, touch) in st.Touched.ToList())
            {
                // Read first (so data read back is checked before anything else), then what the guest did before.
                var types = new List<S2AccessKind> { S2AccessKind.Read };
                types.AddRange(touch.Types.Where(t => t != S2AccessKind.Read));
                var view = st.Touch(region, touch.Offset, touch.Mair, types, touch.Value, 0, record: false);
                After.Add(view);
                if (view.Accesses.FirstOrDefault() is { Type: S2AccessKind.Read } first)
                    FirstReads[(region, touch.Offset)] = first.Outcome == AccessOutcome.Ok ? first.Value : null;
                var failed = view.Accesses.FirstOrDefault(a => a.Outcome is not (AccessOutcome.Ok or AccessOutcome.MmioExit) && touch.Succeeded.Contains(a.Type));
                if (failed is not null)
                {
                    FailErrno = failed.Errno;
                    return new GuestResumeReport(false, $"{region}: {failed} on {destination.Name} ({failed.Detail})");
                }

                if (st.Dead)
                    return new GuestResumeReport(false, $"{region}: the guest stopped on {destination.Name}");
            }

            return new GuestResumeReport(true, "");
        }
    }
}
