using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Replay;
using S2Lab.Lab.Scenarios;
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

    /// <summary>The guest code page's memslot and IPA (below the explained region).</summary>
    private const uint CodeSlot = 1;

    private const ulong CodeIpa = 0x4000_0000;

    /// <summary>Host RAM of the explained host: the model's default, 16 GiB.</summary>
    private const ulong RamSize = 16UL << 30;

    private const string VfioName = "0000:01:00.0";

    private const string NvgraceName = "gpu0";

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
        var (lab, region, policy) = World(cpuPreset, design, regionKind);
        var cpu = CpuPresets.Get(cpuPreset);
        var kd = lab.Host.Design;
        var lines = new List<ExplainLine>
        {
            new("Host", 1, $"{cpu.Name}: FWB {(cpu.Model.HasStage2Fwb ? "present" : "absent")} (ID_AA64MMFR2_EL1.FWB = {cpu.Model.Mmfr2.Fwb}), " +
                           $"DIC {(cpu.Model.HasCacheDic ? "present" : "absent")} (CTR_EL0 bit 29): cacheable PFNMAP {(cpu.Model.SupportsCacheablePfnmap ? "supported" : "not supported")}"),
            new("Host", 0, $"design {kd.Name}: {kd.Summary}"),
        };

        var kind = regionKind;
        var vmm = lab.NewVmm("explain");
        using var kvm = vmm.Kvm;
        // The VMM maps the region as Vmm.Start maps each region of a run.
        var setup = Vmm.Vmm.MapRegion(vmm, region, 0);
        if (setup.Outcome != RegionOutcome.Created)
        {
            lines.Add(new("Mm", 0, $"mmap of the {regionKind} region failed with {setup.Errno}"));
            return new Explanation(lab.Name, kd.Name, regionKind, mair, access, lines, $"mmap failed: {setup.Errno}", "-", "-", []);
        }

        // The Lab's view of the VMA the VMM made (the VMM cannot see it).
        var vma = lab.VmaOf(vmm, setup)!;
        var pte = vma.Backing.Lookup(vma, vma.Start);
        var mapMemory = pte is { } p && lab.Host.Memory.PfnIsMapMemory(p.Pfn);
        var where = pte is { } first
            ? $"; first page at PA 0x{first.Pfn << PAGE_SHIFT:x}, {(mapMemory ? "kernel map memory (struct page, linear map)" : "outside the linear map (no struct page, no kernel VA)")}"
            : "";
        lines.Add(new("Mmap", 3, $"the VMM maps {kind}: VMA [0x{vma.Start:x}, 0x{vma.End:x}), pgprot {vma.PageProt} (MAIR 0x{vma.PageProt.MairByte:X2}, {(vma.IsCacheable ? "cacheable" : "not cacheable")}){where}"));
        // The guest's code page (the loader's; the model guest runs no instructions from it), mapped after the region
        // so that the region lies where a lone mmap puts it.
        var code = vmm.Memory.MapAnonymous(PAGE_SIZE, Prot.PROT_READ | Prot.PROT_WRITE, "guest code");

        var vmResult = vmm.Kvm.CreateVm();
        if (!vmResult.IsOk)
            return new Explanation(lab.Name, kd.Name, regionKind, mair, access, lines, $"KVM_CREATE_VM failed: {vmResult.Error}", "-", "-", []);
        using var vm = vmResult.Value;
        var cap = vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var sysCap = vmm.Kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        lines.Add(new("Capability", 2, $"KVM_CHECK_EXTENSION(243): VM fd {cap}, /dev/kvm {sysCap}"));
        // The code page's memslot, made before the Lab observes: it is not part of the explanation.
        if (code.IsOk)
            vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(CodeSlot, 0, CodeIpa, PAGE_SIZE, code.Value.Value, 0, 0));
        using var log = lab.Events(vmm);

        // The memslot flags are the VMM's own choice (Vmm.FlagsFor), made from what userspace sees: the cacheable flag
        // goes on the device memory its driver table calls cacheable (nvgrace-gpu usemem) when the kernel has the flag
        // and the VMM prefers cacheable; never on /dev/mem or a mixedmap device file, whatever their VMA says.
        var flags = Vmm.Vmm.FlagsFor(setup, policy);
        var e = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(setup.Slot, (uint)flags, Gpa, setup.MappedSize, setup.Hva, 0, 0));
        var memslotEvents = log.Take();
        var md = memslotEvents.OfType<MemslotDecided>().Single();
        lines.Add(new("Memslot", md.Rule, $"KVM_SET_USER_MEMORY_REGION2 slot {md.Slot} flags {md.Flags} [0x{md.Gpa:x}, +0x{md.Size:x}): {ErrnoText.Format(md.Result)}: {md.Reason}"));
        if (e != Errno.None)
            return new Explanation(lab.Name, kd.Name, regionKind, mair, access, lines, $"memslot refused: {e}", "-", "-", []) { Events = memslotEvents };

        // The guest does one access: a one-op program, loaded and run with KVM_RUN.
        var vcpu = vm.CreateVcpu(0).Value;
        var op = access switch
        {
            "write" => GuestOp.Store(Gpa, 0x1122334455667788UL, mair),
            "exec" => GuestOp.Fetch(Gpa, mair),
            _ => GuestOp.Load(Gpa, mair),
        };
        var loaded = vmm.Guest.Load(vcpu, code.IsOk ? code.Value : default, CodeIpa, new GuestProgram([op]));
        var run = loaded == Errno.None ? vcpu.Run() : loaded;
        var events = log.Take();
        var hazards = log.Judge(events);
        lines.AddRange(Lines(events, hazards));
        // What became of the access, the leaf now in place and the effective type: from the events, not the table.
        var accessed = events.OfType<MemoryAccessed>().LastOrDefault();
        var ended = events.OfType<AccessEnded>().LastOrDefault();
        var leaf = log.LeafAt(md.Vm, Gpa);
        var fwb = cpu.Model.HasStage2Fwb;
        var s2 = leaf is { } l ? $"{KvmS2MemAttr.Name(l.KvmType, fwb)} (0x{l.MemAttr:X}), prot {l.KvmProt}" : "-";
        var eff = accessed?.Effective is { } ce ? new EffectiveMemoryType(ce.ParAttr, ce.Attributes) : (EffectiveMemoryType?)null;
        var outcome = accessed is not null ? "completed" : ended?.Outcome switch
        {
            GuestAccessOutcome.MmioExit => "KVM_EXIT_MMIO",
            GuestAccessOutcome.AbortInjected => access == "exec" ? "instruction abort injected into the guest" : "data abort injected into the guest",
            GuestAccessOutcome.RunFailed => $"KVM_RUN fails with {ended.RunError}",
            _ => $"KVM_RUN fails with {(run.IsOk ? Errno.None : run.Error)}",
        };
        var effective = eff is { } ev ? $"{LabText.MemoryType(ev)} (0x{ev.ParAttr:X2} {ev.Description})" : "-";
        return new Explanation(lab.Name, kd.Name, regionKind, mair, access, lines, outcome, s2, effective,
            hazards.Select(h => $"{h.Name}: {h.Detail}").ToList())
        {
            Events = [.. memslotEvents, .. events],
        };
    }

    /// <summary>
    /// The explained world before the VMM maps anything: the host as a run builds it (<see cref="LabHost"/>: the kernel
    /// host, its devices installed by their device kinds), the region as the VMM's <see cref="RegionConfig"/>, and the
    /// VMM's policy for the design choice (a VMM that trusts the kernel; the memslot-flag choice of the variant, else
    /// prefer-cacheable, the scenario default).
    /// </summary>
    internal static (LabHost Lab, RegionConfig Region, VmmPolicy Policy) World(string cpuPreset, string design, string regionKind)
    {
        var choice = Scenarios.DesignCatalog.ParseChoice(design, Scenarios.DesignCatalog.ExplainVariants, allowAll: false, out var error)
            ?? throw new ArgumentException(error, nameof(design));
        var variant = Scenarios.DesignCatalog.VariantOf(choice, Scenarios.DesignCatalog.ExplainVariants);
        var cpu = CpuPresets.Get(cpuPreset);
        var spec = Scenarios.DesignCatalog.KernelSpec(choice, Scenarios.DesignCatalog.ExplainVariants);
        var kd = KvmDesigns.Create(spec);
        if (!RegionKinds.Contains(regionKind))
            throw new ArgumentException($"unknown region kind '{regionKind}'; known: {string.Join(", ", RegionKinds)}", nameof(regionKind));
        var lab = new LabHost(new HostSpec(cpuPreset, cpu.Model, cpu.Name, spec,
            DevicesFor(regionKind), default), kd, variant, RamSize);
        var policy = new VmmPolicy(CapabilityPolicy.TrustKernel, variant.MemslotFlag ?? CacheableFlagChoice.PreferCacheable,
            Scenarios.DesignCatalog.HasCacheableFlag(kd));
        return (lab, RegionFor(lab, regionKind), policy);
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

    /// <summary>
    /// The explained host's devices: a vfio-pci device with one 16 MiB BAR for <c>vfio-bar</c>; for the nvgrace kinds a
    /// GH200 (1 GiB usemem, 1 GiB resmem, 16 MiB BAR0) that the variant may map VM_MIXEDMAP; none otherwise.
    /// </summary>
    private static IReadOnlyList<DeviceSpec> DevicesFor(string kind) => kind switch
    {
        "vfio-bar" => [new VfioPciSpec(VfioName, default, [(0, 16UL << 20)])],
        "nvgrace-usemem" or "nvgrace-resmem" => [new NvgraceGpuSpec(NvgraceName, default, NvGraceGpuModel.GH200, 1UL << 30, 1UL << 30, 16UL << 20, NvGraceUsememMapping.Pfnmap)],
        _ => [],
    };

    /// <summary>
    /// The explained region as the VMM's <see cref="RegionConfig"/>: RAM for anon and hugetlb, BAR0 of the vfio-pci
    /// device for vfio-bar, the usemem or resmem region of the GH200 through vfio for the nvgrace kinds (as a run
    /// assigns a GPU, so the VMM knows the driver and the region). devmem and mixedmap are a 2 MiB window of a
    /// driver's memory, which the VMM maps as a run maps a <c>vmas</c> region's driver piece: the driver's mmap offered
    /// as a device file of the host (<see cref="LabHost.Files"/>), mapped with MAP_FIXED over a reservation.
    /// </summary>
    private static RegionConfig RegionFor(LabHost lab, string kind)
    {
        const ulong size = 2UL << 20;
        switch (kind)
        {
            case "anon":
                return new RegionConfig(kind, Gpa, size, false, new AnonymousRam());
            case "hugetlb":
                return new RegionConfig(kind, Gpa, size, false, new HugetlbRam(PMD_SIZE));
            case "vfio-bar":
                return new RegionConfig(kind, Gpa, 16UL << 20, false, new DeviceMemory(VfioName, "bar0"));
            case "nvgrace-usemem":
            case "nvgrace-resmem":
                {
                    var name = kind == "nvgrace-usemem" ? "usemem" : "resmem";
                    return new RegionConfig(kind, Gpa, lab.Region(NvgraceName, name)!.Size, false, new DeviceMemory(NvgraceName, name));
                }

            case "devmem":
                var pa = lab.Host.Memory.Ram.Base + (1UL << 30);
                return File((p, at, len, prot) => DevMem.Mmap(p, pa, len, prot: prot, fixedAddress: at));
            default:
                var device = new MixedMapDevice(lab.Host, "mixed0", size);
                return File((p, at, len, prot) => device.Mmap(p, 0, len, prot, at));
        }

        // The model's device files have no file offset: each file maps its driver's memory from the explained start.
        RegionConfig File(ModelFiles.MmapHandler mmap)
        {
            var path = $"/dev/s2lab-explain/{kind}";
            lab.Files.Add(path, mmap);
            return new RegionConfig(kind, Gpa, size, false, new MappedPieces([new MappedPiece(0, size, path)]));
        }
    }
}
