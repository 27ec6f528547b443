using System.Globalization;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Reports;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;
using S2Lab.Lab.Scorecard;
using S2Lab.Vmm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Runner;

/// <summary>Which runs to make of a scenario.</summary>
public static class RunPlan
{
    /// <summary>
    /// <paramref name="design"/> null: one run with the designs the file names. "all": every design of the kernel model
    /// with its variants, plus the scenario's variants. A design name: that design with its variants and the
    /// scenario's. DESIGN:VARIANT: that one run (<see cref="DesignCatalog.ParseChoice"/>). Each run's design is the
    /// kernel model's (<see cref="DesignRef"/>), with the variant's argument or its default.
    /// </summary>
    public static IReadOnlyList<(DesignRef? Design, RunVariant Variant)> For(Scenario scenario, string? design)
    {
        if (design is null)
            return [(null, RunVariant.Default)];
        var choice = DesignCatalog.ParseChoice(design, scenario.Variants, allowAll: true, out var error)
            ?? throw new ArgumentException(error, nameof(design));
        var designs = choice.Design is { Name: var one } ? [one] : DesignCatalog.Designs;
        return designs
            .SelectMany(d => DesignCatalog.VariantsFor(d, scenario.Variants).Select(v => (Design: (DesignRef?)DesignCatalog.RunRef(DesignCatalog.DefaultRef(d), v), Variant: v)))
            .Where(p => choice.Variant is null || p.Variant.Label == choice.Variant)
            .ToList();
    }
}

/// <summary>
/// Runs a scenario on the model: builds the hosts (kernel model), starts VMs through the VMM, drives the guest,
/// records every step's result, checks the expect steps and computes the scorecard.
/// </summary>
public static class ScenarioRunner
{
    /// <summary>Runs every run of <see cref="RunPlan.For"/> and gathers them in a report.</summary>
    public static LabReport Run(Scenario scenario, string? design)
    {
        // Runs share nothing (each builds its own hosts), so they run in parallel; the report keeps plan order.
        var plan = RunPlan.For(scenario, design);
        var runs = new RunResult[plan.Count];
        Parallel.For(0, plan.Count, i => runs[i] = RunOnce(scenario, plan[i].Design, plan[i].Variant));
        return new LabReport(scenario.Name, scenario.Description, scenario.File, runs);
    }

    /// <summary>One run: with <paramref name="design"/> set, every host runs that design; else each its own. The variant's argument, if any, overrides either.</summary>
    public static RunResult RunOnce(Scenario scenario, DesignRef? design, RunVariant variant)
    {
        var ram = LabHost.RamFor(scenario);
        var hosts = new Dictionary<string, LabHost>();
        var facts = new List<HostFacts>();
        var designLabels = new List<string>();
        foreach (var h in scenario.Hosts)
        {
            var spec = DesignCatalog.RunRef(design ?? h.Design, variant);
            var kd = KvmDesigns.Create(spec);
            var lh = new LabHost(h, kd, variant, ram, scenario.Kinds);
            foreach (var region in scenario.Vms.SelectMany(v => v.Regions))
                VmasBackingKind.Install(region, lh);
            foreach (var remap in scenario.Steps.OfType<RemapStep>())
                RemapStepKind.Install(remap, lh);
            hosts[h.Name] = lh;
            facts.Add(lh.Probe(spec.ToString()));
            designLabels.Add(spec.Name);
        }

        var label = design?.Name ?? (designLabels.Distinct().Count() == 1 ? designLabels[0] : string.Join("+", designLabels.Distinct()));
        // Run as written: the hosts' own design arguments are the variant (e.g. "param=on", or "param=on, param=off").
        var variantLabel = design is not null ? variant.Label
            : string.Join(", ", scenario.Hosts.Select(h => h.Design.Argument is { } a ? $"{DesignCatalog.ParameterName}={a}" : "").Where(x => x.Length > 0).Distinct());
        var run = new RunState(scenario, hosts, variant);
        var steps = new List<StepResult>();
        foreach (var step in scenario.Steps)
        {
            if (run.Execute(step) is { } result)
                steps.Add(result);
        }
        run.StopAll();

        var row = ScorecardCalculator.Compute(label, variantLabel, facts, steps);
        var checks = Expectations.Check(scenario, label, variantLabel, steps, row);
        return new RunResult(scenario.Name, label, variantLabel, facts, steps, checks, row);
    }


    /// <summary>The state of one run: hosts, VMs, and what the guest wrote and saw. Step kinds run against it.</summary>
    internal sealed class RunState(Scenario scenario, Dictionary<string, LabHost> hosts, RunVariant variant)
    {
        private readonly Dictionary<string, VmState> _vms = scenario.Vms.ToDictionary(v => v.Name, v => new VmState(v, scenario.Kinds));

        /// <summary>The run's VMs by name.</summary>
        public IReadOnlyDictionary<string, VmState> Vms => _vms;

        /// <summary>The run's hosts by name.</summary>
        public IReadOnlyDictionary<string, LabHost> Hosts => hosts;

        /// <summary>Runs a step through its kind (null: the kind runs nothing, as expect).</summary>
        public StepResult? Execute(StepSpec step)
        {
            var kind = scenario.Kinds.Step(step.Kind) ?? throw new InvalidOperationException($"no step kind '{step.Kind}' is registered");
            if (kind.Execute(step, this) is not { } result)
                return null;
            if (step is not IVmStep { Vm: var vmName })
                return result;
            var st = _vms[vmName];
            var id = step.Id is { } i ? $" [{i}]" : "";
            var who = scenario.Vms.Count > 1 ? $"{vmName} " : "";
            var run = st.Runs > 0 ? $"run {st.Runs}: " : "";
            switch (result)
            {
                case StartResult r:
                    st.Phase = $"{who}{run}start on {r.Host}{id}";
                    break;
                case MigrateResult r:
                    st.Phase = $"{who}{run}{r.From} -> {r.To} ({r.Policy}){id}";
                    break;
            }

            return result with { Run = st.Runs, Phase = st.Phase };
        }

        public void StopAll()
        {
            foreach (var v in _vms.Values)
                v.Destroy();
        }

        public VmmPolicy PolicyFor(VmSpec vm, LabHost host, CapabilityPolicy? policyOverride)
        {
            var kind = policyOverride ?? vm.Policy;
            var flag = variant.MemslotFlag ?? vm.MemslotFlag;
            return new VmmPolicy(
                kind,
                flag,
                DesignCatalog.HasCacheableFlag(host.Host.Design));
        }

        /// <summary>The VMM's view of a VM: each region with the backing its backing kind gives.</summary>
        public VmConfig ConfigOf(VmSpec vm) => new(vm.Name, vm.IpaBits, vm.Vcpus,
            vm.Regions.Select(r => new RegionConfig(r.Name, r.Gpa, r.Size, r.ReadOnly, BackingOf(r).ToConfig(r)) { LogDirty = r.LogDirty }).ToList())
        { Mte = vm.Mte };

        private IBackingKind BackingOf(VmRegionSpec r) =>
            scenario.Kinds.Backing(r.BackingSpec.Kind) ?? throw new InvalidOperationException($"no backing kind '{r.BackingSpec.Kind}' is registered");

        /// <summary>A VMM call on part of a region's mapping (mprotect, munmap), when the VM runs.</summary>
        public RangeResult Range(StepSpec s, string vmName, string region, string op, Func<VirtualMachine, Errno> action)
        {
            var st = _vms[vmName];
            if (st.Vm is null)
                return new RangeResult(s.Index, s.Label, op, vmName, region, Errno.None, $"the VM is not running ({st.NotRunningReason}): nothing done");
            var e = action(st.Vm);
            st.ChangedMappings.Add(region);
            return new RangeResult(s.Index, s.Label, op, vmName, region, e, "");
        }

        /// <summary>The region's kind as reports name it: anon, hugetlb, or the device region's kind.</summary>
        internal static string KindOf(LabHost host, VmmHost vmm, RegionSetup r) =>
            r.Config.Backing is DeviceMemory dm && host.Region(dm.Device, dm.Region) is { } d ? KindName(d.Kind, host.VmaOf(vmm, r))
            : r.Config.Backing is HugetlbRam ? "hugetlb" : r.Config.Backing is MappedPieces ? "vmas" : "anon";

        /// <summary>A region's setup as reports show it; <paramref name="mte"/>: the VM was created with MTE on.</summary>
        internal static RegionSetupResult Setup(LabHost host, VmmHost vmm, RegionSetup r, bool mte)
        {
            var kind = KindOf(host, vmm, r);
            var vma = host.VmaOf(vmm, r);
            return new RegionSetupResult(r.Name, kind, r.Config.Gpa, r.Config.Size, vma is null ? null : Facts(host, vma), r.Flags, r.Outcome, r.Errno,
                r.Outcome == RegionOutcome.Created ? "" : r.Detail)
            {
                RefusedForVmmRequest = r.Outcome == RegionOutcome.Failed && vma is not null ? Judging.VmmRequests.RefusalCause(vma, r.Flags, mte, r.Errno) : null,
            };
        }

        internal static string KindName(DeviceRegionKind k, Vma? vma) => k switch
        {
            DeviceRegionKind.NvgraceUsemem => vma is not null && (vma.Flags & VmFlags.VM_MIXEDMAP) != 0 ? "nvgrace-usemem (mixedmap)" : "nvgrace-usemem",
            DeviceRegionKind.NvgraceResmem => "nvgrace-resmem",
            _ => "vfio-bar",
        };

        internal static VmaFacts Facts(LabHost host, Vma vma)
        {
            var kind = (vma.Flags & VmFlags.VM_PFNMAP) != 0 ? "pfnmap"
                : (vma.Flags & VmFlags.VM_MIXEDMAP) != 0 ? "mixedmap"
                : (vma.Flags & VmFlags.VM_HUGETLB) != 0 ? "hugetlb" : "anon";
            bool outside = false;
            if (kind is "pfnmap" or "mixedmap" && vma.Backing.Lookup(vma, vma.Start) is { } pte)
                outside = !host.Host.Memory.PfnIsMapMemory(pte.Pfn);
            var flags = new List<string>();
            foreach (var f in new[] { VmFlags.VM_PFNMAP, VmFlags.VM_MIXEDMAP, VmFlags.VM_IO, VmFlags.VM_HUGETLB, VmFlags.VM_ALLOW_ANY_UNCACHED })
            {
                if ((vma.Flags & f) != 0)
                    flags.Add(f.ToString());
            }

            var desc = $"{(flags.Count == 0 ? "anonymous" : string.Join("|", flags))}, {vma.PageProt}{(outside ? ", outside the linear map" : "")}";
            return new VmaFacts(kind, vma.IsCacheable, (vma.Flags & VmFlags.VM_ALLOW_ANY_UNCACHED) != 0, outside, desc);
        }

    }

    /// <summary>What the guest last did to a region (replayed on the destination after a migration).</summary>
    internal sealed record TouchRecord(ulong Offset, byte Mair, IReadOnlyList<S2AccessKind> Types, ulong Value, HashSet<S2AccessKind> Succeeded);

    /// <summary>One VM of a run: where it runs, whether its guest died, what it wrote and saw.</summary>
    internal sealed class VmState(VmSpec spec, ScenarioKinds kinds)
    {
        public VmSpec Spec { get; } = spec;

        public VirtualMachine? Vm { get; private set; }

        public LabHost? Host { get; private set; }

        /// <summary>How many start steps the VM has had (its lifetimes, counted as reports number them).</summary>
        public int Runs { get; set; }

        /// <summary>The phase the VM is in (set by its last start or migration step).</summary>
        public string Phase { get; set; } = "";

        /// <summary>The host the VM was last started on (whether or not the start worked) or migrated to; at first, its own host.</summary>
        public string LastHost { get; private set; } = spec.Host;

        private LabHost? _lastLab;

        /// <summary>Why <see cref="Vm"/> is null, in words ("it failed to start on altra: ...").</summary>
        public string NotRunningReason { get; set; } = "it was never started";

        /// <summary>KVM_RUN failed: the VMM (like QEMU) exits; the guest runs no more.</summary>
        public bool Dead { get; set; }

        /// <summary>How the guest failed, when <see cref="Dead"/>.</summary>
        public string DeathReason { get; set; } = "";

        /// <summary>The last view of each region the guest touched since the VM started.</summary>
        public Dictionary<string, RegionAccessResult> LastViews { get; } = [];

        public Dictionary<string, TouchRecord> Touched { get; } = [];

        /// <summary>Regions whose host mapping the VMM changed (mprotect, munmap) since the VM started here.</summary>
        public HashSet<string> ChangedMappings { get; } = [];

        /// <summary>Every 8-byte value the guest wrote, by region and offset (the data a migration must carry).</summary>
        public Dictionary<(string Region, ulong Offset), ulong> Written { get; } = [];

        public void Attach(VirtualMachine vm, LabHost host)
        {
            Vm = vm;
            Observe(vm, host);
            Host = host;
            LastHost = host.Name;
            _lastLab = host;
            Dead = false;
            DeathReason = "";
            LastViews.Clear();
            Touched.Clear();
            Written.Clear();
            ChangedMappings.Clear();
        }

        /// <summary>
        /// Attaches the event log to the VM's /dev/kvm from the start, so that every stage-2 leaf (<see
        /// cref="KernelEventLog.LeafAt"/>) and the facts behind it are known when a step touches it.
        /// </summary>
        private static void Observe(VirtualMachine vm, LabHost host) => host.ModelOf(vm.Host).Events.Keeping = false;

        /// <summary>A start on <paramref name="host"/> that did not produce a VM.</summary>
        public void StartFailed(LabHost host, string why)
        {
            LastHost = host.Name;
            _lastLab = host;
            NotRunningReason = why;
        }

        /// <summary>After switch-over: same guest (its memory and history), new VM handles.</summary>
        public void MoveTo(VirtualMachine vm, LabHost host)
        {
            Vm = vm;
            Observe(vm, host);
            Host = host;
            LastHost = host.Name;
            _lastLab = host;
            ChangedMappings.Clear();
        }

        public void Destroy()
        {
            Vm?.Dispose();
            Vm = null;
            Host = null;
            Dead = false;
        }

        /// <summary>The region's kind as its host would map it (for regions of a VM that is not running).</summary>
        private string SpecKind(VmRegionSpec r) => kinds.Backing(r.BackingSpec.Kind)?.ReportKind(r, _lastLab) ?? r.BackingSpec.Kind;

        /// <summary>
        /// The guest accesses <paramref name="offset"/> of <paramref name="region"/>; with <paramref name="gpa"/> set,
        /// that guest-physical address outside every region instead (<paramref name="region"/> is then only a label).
        /// </summary>
        public RegionAccessResult Touch(string region, ulong offset, byte mair, IReadOnlyList<S2AccessKind> types, ulong value, int vcpu, bool record, ulong? gpa = null,
            AccessStep? step = null)
        {
            var regionSpec = gpa is null ? Spec.Region(region)! : null;
            if (Vm is null || Dead)
            {
                var why = Vm is null ? $"the VM is not running: {NotRunningReason}" : $"the guest failed earlier: {DeathReason}";
                return new RegionAccessResult(Spec.Name, LastHost, region, regionSpec is null ? "none" : SpecKind(regionSpec), mair, null, false,
                    types.Select(t => new AccessRecord(t, AccessOutcome.NotRunning, Errno.None, null, why)).ToList(),
                    null, null, null, false, false, CmoRecord.NoneNeeded, [], [why]);
            }

            var setup = regionSpec is null ? null : Vm.Region(region);
            var lab = Host!;
            var kind = setup is null ? "none" : RunState.KindOf(lab, Vm.Host, setup);
            var ipa = gpa ?? regionSpec!.Gpa + offset;
            // Each access is a one-op guest program loaded through the guest seam and run with KVM_RUN; what it did
            // (the access, its fault decisions, stage-2 writes and CMOs) comes back as the kernel's events.
            var cpu = Vm.Vcpus[vcpu];
            var model = lab.ModelOf(Vm.Host);
            var vmNumber = model.VmNumber(Vm.Kvm);
            var records = new List<AccessRecord>();
            var explanation = new List<string>();
            var cmos = new List<CmoRequired>();
            var log = model.Events;
            log.Take(); // what happened before this step is not this step's
            log.Keeping = true;
            var hazards = new List<HazardRecord>();
            MemoryAccessed? lastDone = null;
            var fwb = lab.Host.Cpu.HasStage2Fwb;
            Vma? vma = setup is null ? null : lab.VmaOf(Vm.Host, setup, offset);
            // The guest's SCTLR_EL1 for this step (issue 12): with M or C off, its data accesses go around the caches.
            var sctlr = (step?.Mmu ?? true ? SctlrEl1.M : SctlrEl1.None) | (step?.Caches ?? true ? SctlrEl1.C | SctlrEl1.I : SctlrEl1.None);
            if (step?.Writer is { } writer && setup is not null)
                explanation.Add(HostWrite(writer, setup, lab, region, offset, value));
            // Registers are not memory: a read need not return the last write (VerifyData skips them too).
            var dataJudged = setup is { IsDeviceRegisters: false };
            foreach (var t in types)
            {
                var op = t switch
                {
                    S2AccessKind.Read => GuestOp.Load(ipa, mair),
                    S2AccessKind.Write => GuestOp.Store(ipa, value, mair),
                    _ => GuestOp.Fetch(ipa, mair),
                };
                // KVM_RUN returns (the loader's end exit when done, an MMIO exit) or fails with an errno.
                var exit = RunGuest(cpu, op, sctlr);
                explanation.Add($"{LabText.Access(t)} IPA 0x{ipa:x} with MAIR 0x{mair:X2}:");
                var events = log.Take();
                var r = AccessOf(events, vmNumber, cpu.Id, exit);
                var judged = log.Judge(events);
                explanation.AddRange(Explainer.Lines(events, judged).Select(x => "  " + x));
                cmos.AddRange(events.OfType<CmoRequired>());
                foreach (var h in judged)
                {
                    if (!hazards.Any(x => x.Name == h.Name))
                        hazards.Add(new HazardRecord(h.Name, h.Detail) { Cause = h.Cause });
                }

                AccessOutcome outcome;
                string detail;
                switch (r.Outcome)
                {
                    case GuestAccessOutcome.Completed:
                        outcome = AccessOutcome.Ok;
                        detail = r.Done!.Effective?.Description ?? "completed";
                        lastDone = r.Done;
                        break;
                    case GuestAccessOutcome.MmioExit:
                        outcome = AccessOutcome.MmioExit;
                        detail = $"KVM_EXIT_MMIO at IPA 0x{ipa:x}; the VMM has no device model there";
                        break;
                    case GuestAccessOutcome.AbortInjected:
                        outcome = t == S2AccessKind.Execute ? AccessOutcome.InstructionAbort : AccessOutcome.DataAbort;
                        detail = events.OfType<FaultDecided>().LastOrDefault()?.Reason ?? "abort injected";
                        break;
                    default:
                        outcome = r.RunError == Errno.EFAULT ? AccessOutcome.Efault : AccessOutcome.RunFailed;
                        detail = $"KVM_RUN failed with {r.RunError}";
                        Dead = true;
                        DeathReason = $"{region} {LabText.Access(t)}: {detail}";
                        break;
                }

                // The VMA the kernel found for this access (a completed access's memslot, or the fault's VMA stage).
                if (r.Outcome == GuestAccessOutcome.Completed || events.OfType<FaultDecided>().Any(f => f.Vcpu == cpu.Id && f.Stage == DecisionStage.Vma))
                    vma = VmaBehind(lab, ipa, setup) ?? vma;
                ulong? data = r.Done is { Bytes.Length: >= 8 } d && t == S2AccessKind.Read ? BitConverter.ToUInt64(d.Bytes.Span) : t == S2AccessKind.Write && r.Outcome == GuestAccessOutcome.Completed ? value : null;
                var record1 = new AccessRecord(t, outcome, r.Outcome == GuestAccessOutcome.RunFailed ? r.RunError : Errno.None, data, detail);
                if (dataJudged && t == S2AccessKind.Read && data is { } got && Written.TryGetValue((region, offset), out var want)
                    && Judging.Hazards.StaleRead(got, want, r.Done?.Path, r.Done?.Effective?.Description) is { } stale)
                {
                    record1 = record1 with { Expected = want, Path = r.Done?.Path is { } p ? LabText.Word(p) : "?" };
                    if (!hazards.Any(x => x.Name == stale.Name))
                        hazards.Add(new HazardRecord(stale.Name, stale.Detail));
                }

                records.Add(record1);
                if (t == S2AccessKind.Write && r.Outcome == GuestAccessOutcome.Completed)
                    Written[(region, offset)] = value;
                if (Dead)
                {
                    foreach (var rest in types.Skip(records.Count))
                        records.Add(new AccessRecord(rest, AccessOutcome.NotRunning, Errno.None, null, $"the guest failed earlier: {DeathReason}"));
                    break;
                }
            }

            // The stage-2 mapping now in place for this page, from the events (Stage2Written, MemoryAccessed): no table walk.
            var leaf = log.LeafAt(vmNumber, ipa);
            KvmS2MemType? s2 = leaf is { } l ? l.KvmType : null;
            var s2Text = leaf is { } lf ? $"{KvmS2MemAttr.Name(lf.KvmType, fwb)} (0x{lf.MemAttr:X})" : null;
            var eff = lastDone?.Effective?.Attributes;
            var effText = eff is { } e ? LabText.MemoryType(e) : null;
            var needed = cmos.Where(c => c.Needed).ToList();
            var cmo = new CmoRecord(needed.Select(c => Kernel.Kvm.Stage2.CmoKindNames.KvmName(c.Op)).Distinct().ToList(), needed.All(c => c.Possible),
                string.Join("; ", needed.Where(c => !c.Possible).Select(c => c.Reason).Distinct()));
            var view = new RegionAccessResult(Spec.Name, lab.Name, region, kind, mair, vma is null ? null : RunState.Facts(lab, vma),
                setup?.Outcome == RegionOutcome.Created, records, s2, s2Text, effText, eff?.IsAnyCacheable ?? false, eff?.IsWriteBack ?? false, cmo, hazards, explanation)
            {
                CacheableDeclined = Vm.Policy.KernelHasCacheableFlag && setup is { IsCacheableDeviceMemory: true } &&
                                    (setup.Flags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) == 0,
                MappingChangedByVmm = ChangedMappings.Contains(region),
                Stage2Size = leaf?.Size,
                Stage2Level = leaf?.Level,
            };
            log.Keeping = false;
            if (record)
            {
                LastViews[region] = view;
                var ok = records.Where(x => x.Outcome == AccessOutcome.Ok).Select(x => x.Type).ToHashSet();
                Touched[region] = new TouchRecord(offset, mair, types, value, ok);
            }

            return view;
        }

        /// <summary>How one guest access ended, from its event (<see cref="MemoryAccessed"/> or <see cref="AccessEnded"/>) and KVM_RUN's exit.</summary>
        private readonly record struct GuestAccessSeen(GuestAccessOutcome Outcome, Errno RunError, MemoryAccessed? Done);

        /// <summary>
        /// The access of vCPU <paramref name="vcpu"/> among <paramref name="events"/>: completed when the kernel reports it
        /// accessed memory, else the outcome its <see cref="AccessEnded"/> gives; the errno is KVM_RUN's.
        /// </summary>
        private static GuestAccessSeen AccessOf(IReadOnlyList<KernelEvent> events, int vm, uint vcpu, KvmResult<KvmExit> exit)
        {
            var done = events.OfType<MemoryAccessed>().LastOrDefault(a => a.Vm == vm && a.Vcpu == vcpu);
            if (done is not null)
                return new GuestAccessSeen(GuestAccessOutcome.Completed, Errno.None, done);
            var ended = events.OfType<AccessEnded>().LastOrDefault(a => a.Vm == vm && a.Vcpu == vcpu)
                        ?? throw new InvalidOperationException($"KVM_RUN returned {exit} with no access event from vcpu {vcpu}");
            return new GuestAccessSeen(ended.Outcome, exit.IsOk ? Errno.None : exit.Error, null);
        }

        /// <summary>
        /// Loads <paramref name="op"/> as a one-op program with <paramref name="sctlr"/> (the guest seam) and runs it with
        /// KVM_RUN. The code page is the model loader's to ignore: it writes no code (<see cref="ModelGuestLoader"/>).
        /// </summary>
        private KvmResult<KvmExit> RunGuest(IKvmVcpu cpu, GuestOp op, SctlrEl1 sctlr)
        {
            var (codeHva, codeIpa) = CodePage();
            var e = Vm!.Host.Guest.Load(cpu, codeHva, codeIpa, GuestProgram.Access(op, sctlr));
            if (e != Errno.None)
                throw new InvalidOperationException($"the guest loader refused {op}: {e}");
            return cpu.Run();
        }

        /// <summary>
        /// Where the access programs' code goes: the last page of the VM's first RAM region (a real backend's loader would
        /// write the code there; scenarios touch the start of their regions). The model's loader writes nothing.
        /// </summary>
        private (Hva Hva, ulong Ipa) CodePage()
        {
            var ram = Vm!.Regions.FirstOrDefault(r => r.Outcome == RegionOutcome.Created && r.Config.Backing is AnonymousRam or HugetlbRam);
            return ram is null ? (new Hva(0), 0) : (new Hva(ram.Hva + ram.Config.Size - PAGE_SIZE), ram.Config.Gpa + ram.Config.Size - PAGE_SIZE);
        }

        /// <summary>
        /// The VMA the host has now at the HVA of <paramref name="ipa"/>'s memslot: in <paramref name="setup"/>'s mapping,
        /// or for an access by guest-physical address, in the region whose memslot holds it (null in none, or in a hole).
        /// </summary>
        private Vma? VmaBehind(LabHost lab, ulong ipa, RegionSetup? setup)
        {
            setup ??= Vm!.Regions.FirstOrDefault(r => r.Outcome == RegionOutcome.Created && ipa - r.Config.Gpa < r.Config.Size);
            return setup is null ? null : lab.ModelOf(Vm!.Host).Mm.FindVma(setup.Hva + ((ipa - setup.Config.Gpa) & ~(PAGE_SIZE - 1)));
        }

        /// <summary>
        /// A host-side writer writes <paramref name="value"/> at the region's offset before the guest's accesses, and
        /// the shadow (<see cref="Written"/>) takes the value the guest should then read. Returns the explanation line.
        /// </summary>
        private string HostWrite(HostWriter writer, RegionSetup setup, LabHost lab, string region, ulong offset, ulong value)
        {
            var bytes = BitConverter.GetBytes(value);
            var hva = setup.Hva + offset;
            var word = LabText.Word(writer);
            if (writer == HostWriter.Vmm)
            {
                // The VMM's store through its own mapping (the host seam): a host CPU access, cacheable for a cacheable VMA.
                var e = Vm!.Host.Memory.Write(new Hva(hva), bytes);
                if (e != Errno.None)
                    return $"{word} writes 0x{value:X16} at HVA 0x{hva:x}: fails with {LabText.Errno(e)}";
                Written[(region, offset)] = value;
                return $"{word} writes 0x{value:X16} at HVA 0x{hva:x} through its mapping (a host CPU store)";
            }

            // The device and a previous VM are not the VMM: they need the page's PA, which only the model knows.
            var mm = lab.ModelOf(Vm!.Host).Mm;
            var pte = mm.FaultIn(hva, write: false);
            if (!pte.IsOk)
                return $"{word} writes 0x{value:X16}: no page behind HVA 0x{hva:x} ({LabText.Errno(pte.Error)})";
            var pa = (pte.Value.Pfn << 12) + (hva & 0xFFF);
            // A non-coherent device's DMA (or what a previous VM left there once written back) reaches the PoC only.
            lab.Host.DeviceWrite(Arch.Caches.Accessor.NonCoherentDevice(0), pa, bytes);
            if (writer == HostWriter.Device)
            {
                Written[(region, offset)] = value;
                return $"{word} writes 0x{value:X16} at PA 0x{pa:x} by DMA to the point of coherency";
            }

            // A previous VM's data stays at the PoC; the kernel zeroed the page through its linear map before reuse,
            // and those zeros may still sit in a dirty line. The guest should read zeros.
            lab.Host.Memory.Write(pa, new byte[8]);
            Written[(region, offset)] = 0;
            return $"{word} left 0x{value:X16} at PA 0x{pa:x} (the PoC); the host zeroed the page through its cacheable linear map";
        }

        /// <summary>
        /// After a migration: compares every value written on the source (<paramref name="expected"/>, the shadow at
        /// switch-over) with what the guest finds on the destination before it writes again. For a word the resumed guest
        /// has read (<paramref name="firstReads"/>, its first access there is a read) that is the value of that read;
        /// every other word is read now, as a guest load (MAIR 0xFF, MMU and caches on). The first word found wrong is
        /// <see cref="DataCheck.Lost"/>.
        /// </summary>
        public DataCheck VerifyData(IReadOnlyDictionary<(string Region, ulong Offset), ulong> expected,
            IReadOnlyDictionary<(string Region, ulong Offset), ulong?> firstReads)
        {
            if (Vm is null || expected.Count == 0)
                return new DataCheck(null, "the guest wrote nothing to check", null);
            // Each read is a one-op program through the guest seam, as in Touch; its value is the loader's (LoadedValues).
            var cpu = Vm.Vcpus[0];
            int ok = 0, bad = 0, skipped = 0;
            var firstBad = "";
            LostWord? lost = null;
            foreach (var ((region, offset), value) in expected)
            {
                var setup = Vm.Region(region);
                if (setup.IsDeviceRegisters)
                {
                    skipped++;
                    continue;
                }

                ulong? got;
                string unread = "";
                if (firstReads.TryGetValue((region, offset), out var first) && first is not null)
                {
                    got = first;
                }
                else
                {
                    var exit = RunGuest(cpu, GuestOp.Load(Spec.Region(region)!.Gpa + offset, 0xFF), SctlrEl1.Enabled);
                    var loaded = Vm.Host.Guest.LoadedValues(cpu);
                    got = loaded.Count == 1 ? loaded[0] : null;
                    unread = got is null ? Unread(exit) : "";
                }

                if (got == value)
                {
                    ok++;
                }
                else
                {
                    bad++;
                    if (firstBad.Length == 0)
                    {
                        firstBad = $"; {region}+0x{offset:x}: read {(got is { } g ? $"0x{g:X16}" : unread)}, expected 0x{value:X16}";
                        lost = new LostWord(region, offset, got, value);
                    }
                }
            }

            // A load with no value did not complete: its exit says how (the words of GuestAccessOutcome).
            string Unread(KvmResult<KvmExit> exit) =>
                !exit.IsOk ? nameof(GuestAccessOutcome.RunFailed)
                : exit.Value.Reason == KvmExitReason.Mmio ? nameof(GuestAccessOutcome.MmioExit)
                : nameof(GuestAccessOutcome.AbortInjected);

            var skippedText = skipped > 0 ? $", {skipped} register write(s) not compared (device registers are not memory)" : "";
            return new DataCheck(bad == 0, $"{ok} of {ok + bad} value(s) the guest wrote read back equal on the destination{skippedText}{firstBad}", lost);
        }

        /// <summary>A migration's data check: whether the data is intact, in words, and the first word lost.</summary>
        public readonly record struct DataCheck(bool? Intact, string Check, LostWord? Lost);
    }
}
