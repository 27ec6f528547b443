using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Scenarios.Kinds;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// A validated scenario: hosts, VMs and the steps that run on them. Built only by <see cref="ScenarioLoader"/>,
/// which guarantees that every reference (host, device, VM, region, step id) resolves.
/// </summary>
public sealed record Scenario(
    string Name,
    string Description,
    string File,
    IReadOnlyList<HostSpec> Hosts,
    IReadOnlyList<VmSpec> Vms,
    IReadOnlyList<StepSpec> Steps,
    IReadOnlyList<VariantSpec> Variants)
{
    public HostSpec Host(string name) => Hosts.First(h => h.Name == name);

    public VmSpec Vm(string name) => Vms.First(v => v.Name == name);

    /// <summary>The step, device and backing kinds the file was read with (the runner dispatches through them).</summary>
    internal ScenarioKinds Kinds { get; init; } = ScenarioKinds.Default;
}

/// <summary>A host: its CPU (ID registers), the KVM design it runs, and the devices it can assign.</summary>
/// <param name="Design">The kernel model's design with its argument as the file sets it (<c>params: { param: on }</c>), or at its default.</param>
public sealed record HostSpec(string Name, CpuModel Cpu, string CpuSource, DesignRef Design, IReadOnlyList<DeviceSpec> Devices, SourceMark At)
{
    /// <summary>KVM's memslot limits from a probed host profile (user slots, address spaces, guest_memfd); null: arm64 defaults.</summary>
    public Kernel.Kvm.KvmProfile? KvmProfile { get; init; }

    public DeviceSpec? Device(string name) => Devices.FirstOrDefault(d => d.Name == name);
}

/// <summary>An assignable device on a host.</summary>
public abstract record DeviceSpec(string Name, SourceMark At)
{
    /// <summary>The regions the device exposes to the VMM, in a stable order.</summary>
    public abstract IReadOnlyList<DeviceRegionSpec> Regions { get; }

    public DeviceRegionSpec? Region(string name) => Regions.FirstOrDefault(r => r.Name == name);

    public abstract string Kind { get; }
}

/// <summary>The kinds of device region the model knows (each maps to one driver mmap behaviour).</summary>
public enum DeviceRegionKind
{
    /// <summary>nvgrace-gpu usemem: cacheable device memory, VM_PFNMAP|VM_IO, no VM_ALLOW_ANY_UNCACHED.</summary>
    NvgraceUsemem,

    /// <summary>nvgrace-gpu resmem: write-combine, VM_ALLOW_ANY_UNCACHED.</summary>
    NvgraceResmem,

    /// <summary>A vfio-pci BAR: non-cacheable MMIO, VM_ALLOW_ANY_UNCACHED.</summary>
    VfioBar,
}

/// <summary>One mmap-able region of a device.</summary>
public sealed record DeviceRegionSpec(string Name, DeviceRegionKind Kind, ulong Size, NvGraceUsememMapping Mapping = NvGraceUsememMapping.Pfnmap);

/// <summary>A GPU assigned through the nvgrace-gpu vfio variant driver.</summary>
public sealed record NvgraceGpuSpec(
    string Name, SourceMark At, NvGraceGpuModel Model, ulong UsememSize, ulong ResmemSize, ulong Bar0Size, NvGraceUsememMapping UsememMapping)
    : DeviceSpec(Name, At)
{
    public override string Kind => "nvgrace-gpu";

    public override IReadOnlyList<DeviceRegionSpec> Regions
    {
        get
        {
            var list = new List<DeviceRegionSpec> { new("usemem", DeviceRegionKind.NvgraceUsemem, UsememSize, UsememMapping) };
            if (ResmemSize != 0)
                list.Add(new("resmem", DeviceRegionKind.NvgraceResmem, ResmemSize));
            list.Add(new("bar0", DeviceRegionKind.VfioBar, Bar0Size));
            return list;
        }
    }
}

/// <summary>A plain vfio-pci device with memory BARs.</summary>
public sealed record VfioPciSpec(string Name, SourceMark At, IReadOnlyList<(int Index, ulong Size)> Bars) : DeviceSpec(Name, At)
{
    public override string Kind => "vfio-pci";

    public override IReadOnlyList<DeviceRegionSpec> Regions =>
        Bars.Select(b => new DeviceRegionSpec($"bar{b.Index}", DeviceRegionKind.VfioBar, b.Size)).ToList();
}

/// <summary>A VM: where it starts, its IPA size, RAM, assigned device regions and VMM policy.</summary>
public sealed record VmSpec(
    string Name,
    string Host,
    int IpaBits,
    int Vcpus,
    CapabilityPolicy Policy,
    CacheableFlagChoice MemslotFlag,
    IReadOnlyList<VmRegionSpec> Regions,
    SourceMark At)
{
    public VmRegionSpec? Region(string name) => Regions.FirstOrDefault(r => r.Name == name);

    /// <summary>The VMM gives the guest MTE (KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) at start, on every host it starts on).</summary>
    public bool Mte { get; init; }
}

/// <summary>One guest-physical region of a VM: RAM, or a device region (then <see cref="Device"/> is set).</summary>
public sealed record VmRegionSpec(
    string Name, ulong Gpa, ulong Size, bool ReadOnly, string? Device, string? DeviceRegion, SourceMark At)
{
    public bool IsRam => Device is null;

    /// <summary>The backing as its kind read it (hugetlb carries its page size).</summary>
    public RegionBackingSpec BackingSpec { get; init; } = RegionBackingSpec.Anon;

    /// <summary>The memslot is created with KVM_MEM_LOG_DIRTY_PAGES (<c>logDirty: true</c>; EINVAL on VM_PFNMAP, rule 6).</summary>
    public bool LogDirty { get; init; }

    public ulong End => Gpa + Size;
}

/// <summary>A step of a scenario.</summary>
public abstract record StepSpec(int Index, string? Id, SourceMark At)
{
    /// <summary>The step's label in reports: its id or "#index kind".</summary>
    public string Label => Id ?? $"#{Index + 1} {Kind}";

    public abstract string Kind { get; }
}

/// <summary>Start a VM (on its own host, or <see cref="Host"/>).</summary>
public sealed record StartStep(int Index, string? Id, SourceMark At, string Vm, string Host) : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "start";
}

/// <summary>Stop (destroy) a running VM.</summary>
public sealed record StopStep(int Index, string? Id, SourceMark At, string Vm) : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "stop";
}

/// <summary>
/// Who writes <see cref="AccessStep.Value"/> at the access's address before the guest's accesses (issue 12): the VMM
/// through its mapping, a non-coherent device's DMA to the PoC, or a previous VM whose data is left at the PoC while
/// the kernel's zeroing of the page sits in the cache.
/// </summary>
public enum HostWriter
{
    Vmm,
    Device,
    PreviousVm,
}

/// <summary>Guest accesses to one page of a region, with the guest's stage-1 MAIR attribute byte.</summary>
public sealed record AccessStep(
    int Index, string? Id, SourceMark At, string Vm, string Region, ulong Offset, byte Mair, IReadOnlyList<S2AccessKind> Types, ulong Value, int Vcpu)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "access";

    /// <summary>A host-side writer that writes first (null: none).</summary>
    public HostWriter? Writer { get; init; }

    /// <summary>SCTLR_EL1.M during the accesses (false: early boot, or a guest that turned its MMU off).</summary>
    public bool Mmu { get; init; } = true;

    /// <summary>SCTLR_EL1.C (and .I) during the accesses.</summary>
    public bool Caches { get; init; } = true;

    /// <summary>Set for an access to a guest-physical address outside every region (<see cref="Region"/> is then its label).</summary>
    public ulong? Gpa { get; init; }
}

/// <summary>The VMM mprotects part of a region's host mapping.</summary>
public sealed record MprotectStep(int Index, string? Id, SourceMark At, string Vm, string Region, ulong Offset, ulong Size, Prot Prot)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "mprotect";
}

/// <summary>The VMM munmaps part of a region's host mapping.</summary>
public sealed record MunmapStep(int Index, string? Id, SourceMark At, string Vm, string Region, ulong Offset, ulong Size)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "munmap";
}

/// <summary>Guest writes made while pre-copy runs: <see cref="Pages"/> pages from <see cref="Offset"/>, in each of the first <see cref="Rounds"/> rounds.</summary>
public sealed record DirtySpec(string Region, ulong Offset, int Pages, int Rounds);

/// <summary>Live-migrate a running VM to another host.</summary>
public sealed record MigrateStep(
    int Index, string? Id, SourceMark At, string Vm, string To, CapabilityPolicy? Policy, IReadOnlyList<DirtySpec> Dirty, int MaxRounds, int StopCopyPages)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "migrate";
}

/// <summary>Assertions about an earlier step's result (or about the run's scorecard), checked when the run matches the filters.</summary>
public sealed record ExpectStep(
    int Index,
    string? Id,
    SourceMark At,
    string? Step,
    IReadOnlyList<string> Designs,
    IReadOnlyList<string> Variants,
    IReadOnlyList<Expectation> Checks)
    : StepSpec(Index, Id, At)
{
    public override string Kind => "expect";
}

/// <summary>One field of an expect step: a name, the expected value as written, and where it was written.</summary>
public sealed record Expectation(string Field, string Expected, SourceMark At);

/// <summary>
/// A scenario-defined variant: extra runs for some designs with device overrides (e.g. usemem mapped VM_MIXEDMAP).
/// </summary>
public sealed record VariantSpec(string Name, IReadOnlyList<string> Designs, IReadOnlyDictionary<string, NvGraceUsememMapping> UsememMapping);
