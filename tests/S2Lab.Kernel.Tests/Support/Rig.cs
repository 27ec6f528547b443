using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Tests.Support;

/// <summary>A host, a VMM process, /dev/kvm and one VM, with helpers to add memslots over driver VMAs.</summary>
internal sealed class Rig
{
    public const ulong GiB = 1UL << 30;
    public const ulong MiB = 1UL << 20;

    public Rig(string cpu, string design, KvmProfile? profile = null, ulong ramSize = 4UL << 30)
        : this(CpuPresets.Get(cpu).Model, design, profile, ramSize)
    {
    }

    /// <summary>A rig on a CPU built in the test (e.g. FWB without DIC, which no preset has).</summary>
    public Rig(CpuModel cpu, string design, KvmProfile? profile = null, ulong ramSize = 4UL << 30)
    {
        Host = new Host("h", cpu, KvmDesigns.Create(design), new PhysicalMemory(ramSize: ramSize));
        Vmm = Host.CreateProcess("vmm");
        Kvm = Host.OpenKvm(Vmm, profile);
        Vm = Kvm.CreateModelVm().Value;
        Vcpu = Vm.CreateModelVcpu(0).Value;
        Kvm.Observer = Events; // the rule tests read the kernel's decisions from its events
    }

    /// <summary>Every kernel event of the rig's /dev/kvm, in order.</summary>
    public KernelEventList Events { get; } = new();

    /// <summary>The rules of the <see cref="FaultDecided"/> events at <paramref name="stage"/> since the last <see cref="KernelEventList.Clear"/>.</summary>
    public IReadOnlyList<int> FaultRules(DecisionStage stage) =>
        Events.Events.OfType<FaultDecided>().Where(e => e.Stage == stage).Select(e => e.Rule).ToList();

    /// <summary>The rule of the last <see cref="FaultDecided"/> at <paramref name="stage"/> (fails when there is none).</summary>
    public int LastFaultRule(DecisionStage stage) => FaultRules(stage)[^1];

    /// <summary>The last completed guest access the kernel reported (fails when there is none).</summary>
    public MemoryAccessed LastAccessed => Events.Events.OfType<MemoryAccessed>().Last();

    /// <summary>
    /// What the host maps behind the leaf <paramref name="a"/> used: the facts of the fault that wrote that leaf (the
    /// last <see cref="FaultDecided"/> before its <see cref="Stage2Written"/> map or relax).
    /// </summary>
    public FaultFacts LeafFacts(MemoryAccessed a)
    {
        FaultFacts? last = null, found = null;
        foreach (var e in Events.Events)
        {
            if (e is FaultDecided f)
                last = f.Facts;
            else if (e is Stage2Written { Kind: Stage2WriteKind.Map or Stage2WriteKind.RelaxPerms, Leaf: { } l } && l.Ipa == a.Leaf.Ipa)
                found = last;
        }
        return Assert.IsType<FaultFacts>(found);
    }

    /// <summary>
    /// The facts of a mismatched alias (Lab/Judging/Hazards.cs defines the hazard; the kernel only reports facts): the
    /// host maps the PA cacheable (linear map, a cacheable VMA per rule 3, or guest_memfd) and the guest's effective
    /// type is non-cacheable.
    /// </summary>
    public bool IsMismatchedAlias(MemoryAccessed a)
    {
        var host = LeafFacts(a);
        return (host.MapMemory || host.VmaCacheable || host.GuestMemfd) && !a.Effective!.Value.Attributes.IsAnyCacheable;
    }

    /// <summary>The facts of RAM seen as Device: an effective Device type at a PA that is kernel RAM or device memory (HBM).</summary>
    public bool IsRamAsDevice(MemoryAccessed a) =>
        a.Effective!.Value.Attributes.IsDevice
        && Host.Memory.RegionOf(a.Pa) is { } region
        && (region.IsMapMemory || region.Kind == PhysRegionKind.DeviceMemory);

    /// <summary>Whether any CMO KVM needed so far had no kernel VA (impossible maintenance).</summary>
    public bool AnyImpossibleCmo => Events.Events.OfType<CmoRequired>().Any(c => c.IsImpossible);

    /// <summary>None of the three hazards' facts hold for <paramref name="a"/> and no CMO was impossible.</summary>
    public void AssertNoHazard(MemoryAccessed a)
    {
        Assert.False(IsMismatchedAlias(a), "mismatched alias");
        Assert.False(IsRamAsDevice(a), "RAM as Device");
        Assert.False(AnyImpossibleCmo, "impossible maintenance");
    }

    public Host Host { get; }

    public Process Vmm { get; }

    public ModelKvmSystem Kvm { get; }

    public ModelKvmVm Vm { get; }

    public ModelKvmVcpu Vcpu { get; }

    /// <summary>A GH200 with scaled-down sizes (4 GiB HBM: 2.5 GiB usemem after the 1 GiB resmem, rounded to 512 MiB).</summary>
    public NvGraceGpu AddGh200(NvGraceGpuModel model = NvGraceGpuModel.GH200) =>
        new(Host, "gpu0", new NvGraceGpuConfig(model, MemorySize: 4 * GiB, Bar0Size: 16 * MiB));

    public Errno AddSlot(uint slot, ulong gpa, Vma vma, KvmMemFlags flags = KvmMemFlags.None, ulong? size = null) =>
        Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(slot, (uint)flags, gpa, size ?? vma.Size, vma.Start, 0, 0));

    public Vma Anon(ulong size) => AnonymousMemory.Mmap(Vmm, size).Value;

    public GuestAccessResult Read(ulong ipa, byte mair = 0xFF) => Vcpu.Access(GuestAccessRequest.Read(ipa, mair));

    public GuestAccessResult Write(ulong ipa, ulong value, byte mair = 0xFF) => Vcpu.Access(GuestAccessRequest.Write(ipa, mair, value));

    public GuestAccessResult Exec(ulong ipa, byte mair = 0xFF) => Vcpu.Access(GuestAccessRequest.Exec(ipa, mair));
}
