using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Replay;
using S2Lab.Vmm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Runner;

/// <summary>One line of an explanation: the stage, the rule of docs/rules.md (0 for none) and the text.</summary>
public sealed record ExplainLine(string Stage, int Rule, string Text)
{
    public override string ToString() => Rule > 0 ? $"[{Stage}] (rule {Rule}) {Text}" : $"[{Stage}] {Text}";
}

/// <summary>
/// The whole chain for one region kind on one host: the mapping, the memslot, the access, the result. The lines from
/// the memslot on are built from <see cref="Events"/>, the kernel events the memslot and the access produced.
/// </summary>
public sealed record Explanation(
    string Host, string Design, string RegionKind, byte Mair, string Access, IReadOnlyList<ExplainLine> Lines, string Outcome, string Stage2, string Effective, IReadOnlyList<string> Hazards)
{
    /// <summary>The kernel events behind the lines, in order (empty when the mmap or KVM_CREATE_VM failed).</summary>
    public IReadOnlyList<KernelEvent> Events { get; init; } = [];
}

/// <summary>
/// <c>s2lab explain</c>: builds a host with one device or memory region of the given kind, maps it into a VMM,
/// creates a memslot and lets a guest touch it, and reports every decision the model made, with rule numbers.
/// </summary>
public static class Explainer
{
    /// <summary>The region kinds <see cref="Explain"/> knows.</summary>
    public static readonly IReadOnlyList<string> RegionKinds = ["anon", "hugetlb", "vfio-bar", "nvgrace-usemem", "nvgrace-resmem", "devmem", "mixedmap"];

    private const ulong Gpa = 0x1_0000_0000;

    /// <param name="cpuPreset">A CPU preset name.</param>
    /// <param name="design">
    /// A design choice as <c>s2lab run --design</c> takes it (<see cref="Scenarios.DesignCatalog.ParseChoice"/>):
    /// <c>linux-6.17</c>, <c>proposal-module-param:param=on</c>, <c>proposal-memslot-flag:flag=prefer-migratable</c>,
    /// <c>linux-6.17:usemem=mixedmap</c> (<see cref="Scenarios.DesignCatalog.ExplainVariants"/>). A bare design runs as
    /// configured by default: parameters off, and a VMM that prefers cacheable (the scenario default).
    /// </param>
    /// <param name="regionKind">One of <see cref="RegionKinds"/>.</param>
    /// <param name="mair">The guest's stage-1 MAIR attribute byte.</param>
    /// <param name="access">read, write or exec.</param>
    public static Explanation Explain(string cpuPreset, string design, string regionKind, byte mair, string access)
    {
        var choice = Scenarios.DesignCatalog.ParseChoice(design, Scenarios.DesignCatalog.ExplainVariants, allowAll: false, out var error)
            ?? throw new ArgumentException(error, nameof(design));
        var variant = Scenarios.DesignCatalog.VariantOf(choice, Scenarios.DesignCatalog.ExplainVariants);
        var cpu = CpuPresets.Get(cpuPreset);
        var kd = KvmDesigns.Create(Scenarios.DesignCatalog.KernelSpec(choice, Scenarios.DesignCatalog.ExplainVariants));
        var host = new Host(cpuPreset, cpu.Model, kd);
        var vmm = host.CreateProcess("vmm");
        var lines = new List<ExplainLine>
        {
            new("Host", 1, $"{cpu.Name}: FWB {(cpu.Model.HasStage2Fwb ? "present" : "absent")} (ID_AA64MMFR2_EL1.FWB = {cpu.Model.Mmfr2.Fwb}), " +
                           $"DIC {(cpu.Model.HasCacheDic ? "present" : "absent")} (CTR_EL0 bit 29): cacheable PFNMAP {(cpu.Model.SupportsCacheablePfnmap ? "supported" : "not supported")}"),
            new("Host", 0, $"design {kd.Name}: {kd.Summary}"),
        };

        var kind = regionKind;
        var usemem = variant.UsememMapping.TryGetValue("gpu0", out var m) && m == NvGraceUsememMapping.Mixedmap
            ? NvGraceUsememMapping.Mixedmap
            : NvGraceUsememMapping.Pfnmap;
        var mapped = MapRegion(host, vmm, regionKind, usemem);
        if (!mapped.IsOk)
        {
            lines.Add(new("Mm", 0, $"mmap of the {regionKind} region failed with {mapped.Error}"));
            return new Explanation(host.Name, kd.Name, regionKind, mair, access, lines, $"mmap failed: {mapped.Error}", "-", "-", []);
        }

        var vma = mapped.Value;
        var pte = vma.Backing.Lookup(vma, vma.Start);
        var mapMemory = pte is { } p && host.Memory.PfnIsMapMemory(p.Pfn);
        var where = pte is { } first
            ? $"; first page at PA 0x{first.Pfn << PAGE_SHIFT:x}, {(mapMemory ? "kernel map memory (struct page, linear map)" : "outside the linear map (no struct page, no kernel VA)")}"
            : "";
        lines.Add(new("Mmap", 3, $"the VMM maps {kind}: VMA [0x{vma.Start:x}, 0x{vma.End:x}), pgprot {vma.PageProt} (MAIR 0x{vma.PageProt.MairByte:X2}, {(vma.IsCacheable ? "cacheable" : "not cacheable")}){where}"));

        using var kvm = host.OpenKvm(vmm);
        using var log = KernelEventLog.Attach(kvm);
        var vmResult = kvm.CreateModelVm();
        if (!vmResult.IsOk)
            return new Explanation(host.Name, kd.Name, regionKind, mair, access, lines, $"KVM_CREATE_VM failed: {vmResult.Error}", "-", "-", []);
        using var vm = vmResult.Value;
        var cap = vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var sysCap = kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        lines.Add(new("Capability", 2, $"KVM_CHECK_EXTENSION(243): VM fd {cap}, /dev/kvm {sysCap}"));

        // The VMM's memslot-flag choice, as the Vmm makes it: the flag goes on cacheable device memory (a cacheable
        // VM_PFNMAP or VM_MIXEDMAP mapping) when the kernel has it and the VMM prefers cacheable.
        var preferCacheable = (variant.MemslotFlag ?? CacheableFlagChoice.PreferCacheable) == CacheableFlagChoice.PreferCacheable;
        var memslotFlag = Scenarios.DesignCatalog.HasCacheableFlag(kd) && preferCacheable && vma.IsCacheable && vma.Flags.IsPfnmapOrMixed();
        var flags = memslotFlag ? KvmMemFlags.ENABLE_CACHEABLE_PFNMAP : KvmMemFlags.None;
        var e = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, (uint)flags, Gpa, vma.Size, vma.Start, 0, 0));
        var memslotEvents = log.Take();
        var md = memslotEvents.OfType<MemslotDecided>().Single();
        lines.Add(new("Memslot", md.Rule, $"KVM_SET_USER_MEMORY_REGION2 slot {md.Slot} flags {md.Flags} [0x{md.Gpa:x}, +0x{md.Size:x}): {ErrnoText.Format(md.Result)}: {md.Reason}"));
        if (e != Errno.None)
            return new Explanation(host.Name, kd.Name, regionKind, mair, access, lines, $"memslot refused: {e}", "-", "-", []) { Events = memslotEvents };

        var vcpu = vm.CreateModelVcpu(0).Value;
        var type = access switch
        {
            "write" => GuestAccessRequest.Write(Gpa, mair, 0x1122334455667788UL),
            "exec" => GuestAccessRequest.Exec(Gpa, mair),
            _ => GuestAccessRequest.Read(Gpa, mair),
        };
        var r = vcpu.Access(type);
        var events = log.Take();
        var hazards = log.Judge(events);
        lines.AddRange(Lines(events, hazards));
        var accessed = events.OfType<MemoryAccessed>().LastOrDefault();
        var leaf = vm.Stage2.GetLeaf(Gpa) ?? r.Leaf;
        var fwb = cpu.Model.HasStage2Fwb;
        var s2 = leaf is { } l ? $"{KvmS2MemAttr.Name(l.KvmType, fwb)} (0x{l.MemAttr:X}), prot {l.KvmProt}" : "-";
        var eff = accessed?.Effective is { } ce ? new EffectiveMemoryType(ce.ParAttr, ce.Attributes) : (EffectiveMemoryType?)null;
        var outcome = r.Outcome switch
        {
            GuestAccessOutcome.Completed => "completed",
            GuestAccessOutcome.MmioExit => "KVM_EXIT_MMIO",
            GuestAccessOutcome.AbortInjected => access == "exec" ? "instruction abort injected into the guest" : "data abort injected into the guest",
            _ => $"KVM_RUN fails with {r.RunError}",
        };
        var effective = eff is { } ev ? $"{LabText.MemoryType(ev)} (0x{ev.ParAttr:X2} {ev.Description})" : "-";
        return new Explanation(host.Name, kd.Name, regionKind, mair, access, lines, outcome, s2, effective,
            hazards.Select(h => $"{h.Name}: {h.Detail}").ToList())
        {
            Events = [.. memslotEvents, .. events],
        };
    }

    /// <summary>
    /// The explanation lines of an access's events: each fault decision with its rule, each CMO KVM considered, and for
    /// the completed access the translation, the Arm combine step by step (<see cref="AttributeCombiner.Explain"/>)
    /// and the hazards judged.
    /// </summary>
    public static IEnumerable<ExplainLine> Lines(IReadOnlyList<KernelEvent> events, IReadOnlyList<Judging.Hazard> hazards)
    {
        // KVM does the CMOs while it writes the leaf, before the fault's last decision reports the leaf written; the
        // explanation shows them after that line, as "what the write needed".
        var cmos = new List<ExplainLine>();
        foreach (var ev in events)
        {
            if (ev is not (CmoRequired or Stage2Written) && cmos.Count > 0 && !(ev is FaultDecided { Stage: DecisionStage.Stage2 }))
            {
                foreach (var c in cmos)
                    yield return c;
                cmos.Clear();
            }
            switch (ev)
            {
                case FaultDecided f:
                    yield return new(f.Stage.ToString(), f.Rule, f.Reason);
                    if (f.Stage == DecisionStage.Stage2)
                    {
                        foreach (var c in cmos)
                            yield return c;
                        cmos.Clear();
                    }
                    break;
                case CmoRequired c:
                    cmos.Add(new(nameof(DecisionStage.Cmo), 0, c.Text));
                    break;
                case MemoryAccessed a:
                    yield return new(nameof(DecisionStage.Stage2), 0, $"translated by {a.Leaf}: PA {a.Pa:x}");
                    if (a.Input is { } input)
                    {
                        var ex = AttributeCombiner.Explain(input);
                        foreach (var step in ex.Steps)
                            yield return new(nameof(DecisionStage.Combine), 0, step.Text);
                        var eff = new EffectiveMemoryType(ex.Result.ParAttr, ex.Result.Attributes);
                        yield return new(nameof(DecisionStage.Combine), 0,
                            $"in short: S1 MAIR 0x{input.S1Attr:X2} + S2 MemAttr 0x{a.Leaf.MemAttr:X} (FWB={(a.Leaf.Fwb ? 1 : 0)}) = {eff}");
                    }
                    break;
            }
        }
        foreach (var c in cmos)
            yield return c;
        foreach (var h in hazards)
            yield return new(nameof(DecisionStage.Hazard), 0, h.ToString());
    }

    private static KvmResult<Vma> MapRegion(Host host, Process vmm, string kind, NvGraceUsememMapping usemem)
    {
        const ulong size = 2UL << 20;
        switch (kind)
        {
            case "anon":
                return AnonymousMemory.Mmap(vmm, size);
            case "hugetlb":
                return Hugetlbfs.Mmap(vmm, size);
            case "vfio-bar":
                return new VfioPciDevice(host, "0000:01:00.0", 16UL << 20).MmapBar(vmm, 0);
            case "nvgrace-usemem":
            case "nvgrace-resmem":
                {
                    var gpu = new NvGraceGpu(host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GH200, 2UL << 30, MemblkSize: 512UL << 20, UsememMapping: usemem));
                    return kind == "nvgrace-usemem" ? gpu.MmapUsemem(vmm, 0, size) : gpu.MmapResmem(vmm, 0, size);
                }

            case "devmem":
                return DevMem.Mmap(vmm, host.Memory.Ram.Base + (1UL << 30), size);
            case "mixedmap":
                return new MixedMapDevice(host, "mixed0", size).Mmap(vmm);
            default:
                throw new ArgumentException($"unknown region kind '{kind}'; known: {string.Join(", ", RegionKinds)}", nameof(kind));
        }
    }
}
