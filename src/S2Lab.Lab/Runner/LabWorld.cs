using System.Runtime.CompilerServices;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;
using S2Lab.Vmm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Runner;

/// <summary>A device region a Lab host offers its VMMs through vfio (<see cref="ModelVfioHost"/>), with the Lab's name for its kind.</summary>
internal sealed record ModelDeviceRegion(string Device, string Region, ulong Size, DeviceRegionKind Kind);

/// <summary>
/// The model objects behind one VMM a <see cref="LabHost"/> made: its /dev/kvm and its address space. The VMM sees them
/// only as seams (<see cref="VmmHost"/>); the Lab may read the model under them (docs/architecture.md), and does so
/// through this one route (<see cref="LabHost.ModelOf"/>): VMA facts, the page behind an HVA, the kernel's events.
/// </summary>
internal sealed record VmmModel(ModelKvmSystem Kvm, ModelAddressSpace Memory)
{
    /// <summary>The VMM process's mm (VMAs and page tables, which userspace cannot see).</summary>
    public MmStruct Mm => Memory.Mm;

    /// <summary>The Lab's event log on this /dev/kvm (attached on first use, kept for the system's life).</summary>
    public KernelEventLog Events => KernelEventLog.Of(Kvm);

    /// <summary>The number the kernel's events give <paramref name="vm"/> (its 1-based number on this /dev/kvm).</summary>
    public int VmNumber(IKvmVm vm) =>
        Kvm.Vms.FirstOrDefault(v => ReferenceEquals(v, vm))?.Number ?? throw new InvalidOperationException("the VM is not one of this /dev/kvm's");
}

/// <summary>One model host of a run: the kernel <see cref="Host"/>, its devices, and what the runner probed.</summary>
internal sealed class LabHost
{
    private readonly Dictionary<(string, string), ModelDeviceRegion> _regions = [];
    private readonly ConditionalWeakTable<VmmHost, VmmModel> _vmms = [];
    private readonly ModelVfioHost _vfio = new();
    private readonly ModelGuestLoader _guest = new();
    private readonly ModelFiles _files = new();
    private int _processes;

    public LabHost(HostSpec spec, IKvmDesign design, RunVariant variant, ulong ramSize, ScenarioKinds? kinds = null)
    {
        Spec = spec;
        Host = new Host(spec.Name, spec.Cpu, design, new PhysicalMemory(ramSize: ramSize));
        foreach (var d in spec.Devices)
        {
            // The device's kind creates its driver and offers its regions.
            var kind = (kinds ?? ScenarioKinds.Default).Device(d.Kind) ?? throw new InvalidOperationException($"no device kind '{d.Kind}' is registered");
            kind.Install(d, this, variant);
        }
    }

    public HostSpec Spec { get; }

    public Host Host { get; }

    public string Name => Spec.Name;

    /// <summary>The device files this host's VMMs may mmap (the drivers of <c>vmas</c> regions' pieces).</summary>
    public ModelFiles Files => _files;

    public ModelDeviceRegion? Region(string device, string region) => _regions.GetValueOrDefault((device, region));

    /// <summary>A new VMM process on this host with /dev/kvm open.</summary>
    public VmmHost NewVmm(string vmName)
    {
        var p = Host.CreateProcess($"vmm-{vmName}-{++_processes}");
        var model = new VmmModel(Host.OpenKvm(p, Spec.KvmProfile), new ModelAddressSpace(p, _vfio, _files));
        var vmm = new VmmHost(Name, model.Kvm, model.Memory, _vfio, _guest);
        _vmms.Add(vmm, model);
        return vmm;
    }

    /// <summary>
    /// The model behind <paramref name="vmm"/>, a VMM this host made (<see cref="NewVmm"/>): the one place where the Lab
    /// looks under the seams, so that it needs no cast of a seam to a model type.
    /// </summary>
    public VmmModel ModelOf(VmmHost vmm) =>
        _vmms.TryGetValue(vmm, out var m) ? m : throw new InvalidOperationException($"the VMM was not made by host {Name}");

    /// <summary>
    /// The Lab's event log of the /dev/kvm that <paramref name="vmm"/> (made by <see cref="NewVmm"/>) opened, attached on
    /// first use (<see cref="KernelEventLog.Of"/>): what the Lab learns of the kernel's decisions, beside what the VMM's
    /// calls return.
    /// </summary>
    public KernelEventLog Events(VmmHost vmm) => ModelOf(vmm).Events;

    /// <summary>
    /// The VMA a VMM of this host created for <paramref name="r"/> (null if it never mapped it): the Lab's view, not
    /// the VMM's. For a region of several VMAs (<see cref="MappedPieces"/>), the VMA that is at <paramref name="offset"/> now
    /// (null in a hole).
    /// </summary>
    public Vma? VmaOf(VmmHost vmm, RegionSetup r, ulong offset = 0) =>
        r.MappedSize == 0 ? null
        : r.Config.Backing is MappedPieces ? ModelOf(vmm).Mm.FindVma(r.Hva + offset)
        : ModelOf(vmm).Memory.MappingAt(new Hva(r.Hva));

    /// <summary>
    /// The 8 bytes at <paramref name="offset"/> of <paramref name="r"/> as a read through <paramref name="vmm"/>'s mapping
    /// would return them now, found without making that read: the data cache's line if the mapping is cacheable and the
    /// line is held, else the point of coherency (<see cref="Arch.Caches.CacheSystem.TryPeekLine"/>, so the Lab's look
    /// allocates no line and faults in no page). A page the mapping has not faulted in reads as zeros (the copy left
    /// it: zeros on both sides). Null where the VMM has no mapping there.
    /// </summary>
    public ulong? PeekThroughVmm(VmmHost vmm, RegionSetup r, ulong offset)
    {
        if (VmaOf(vmm, r, offset) is not { } vma)
            return null;
        var hva = r.Hva + offset;
        if (vma.Backing.Lookup(vma, hva) is not { } pte)
            return 0;
        var pa = (pte.Pfn << PAGE_SHIFT) + (hva & (PAGE_SIZE - 1));
        Span<byte> word = stackalloc byte[8];
        Span<byte> line = stackalloc byte[Arch.Caches.CacheLine.Size];
        var attrs = Arch.Attributes.Mair.Decode(vma.PageProt.MairByte, Arch.Attributes.AttributeFeatures.None).Attributes;
        if (Arch.Caches.CacheSystem.CachingOf(attrs) != Arch.Caches.DataCaching.None && Host.Caches.TryPeekLine(pa, line))
            line.Slice((int)(pa & (Arch.Caches.CacheLine.Size - 1)), 8).CopyTo(word);
        else
            Host.Memory.ReadPoc(pa, word);
        return BitConverter.ToUInt64(word);
    }

    /// <summary>Offers a device region to this host's VMMs (device kinds call it from Install).</summary>
    public void Add(string device, string driver, string region, ulong size, DeviceRegionKind kind, Func<Process, KvmResult<Vma>> mmap)
    {
        _regions[(device, region)] = new ModelDeviceRegion(device, region, size, kind);
        _vfio.Add(device, driver, DeviceMemoryPolicy.RegionIndex(driver, region)!.Value, size, mmap);
    }

    /// <summary>
    /// Probes capability 243 on both fds, and an unknown capability beside it, from a scratch process (as a VMM
    /// would before starting anything).
    /// </summary>
    public HostFacts Probe(string designLabel)
    {
        const uint unknownCap = 0x7FFF_FF00;
        var p = Host.CreateProcess("probe");
        using var kvm = Host.OpenKvm(p, Spec.KvmProfile);
        var sys = kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var unknownSys = kvm.CheckExtension(unknownCap);
        // Without a VM fd there is nothing to ask: say why instead of an answer.
        var vm = kvm.CreateVm();
        string vmCap = $"no VM (KVM_CREATE_VM failed with {vm.Error})", unknownVm = vmCap;
        if (vm.IsOk)
        {
            using var v = vm.Value;
            vmCap = v.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).ToString();
            unknownVm = v.CheckExtension(unknownCap).ToString();
        }

        var cpu = Spec.Cpu;
        return new HostFacts(Name, cpu.Name, Spec.CpuSource, cpu.HasStage2Fwb, cpu.HasCacheDic, cpu.HasCacheIdc, designLabel, vmCap, sys.ToString(), unknownSys.ToString(), unknownVm);
    }


    /// <summary>Host RAM large enough for every VM's RAM (pages are allocated on touch only).</summary>
    public static ulong RamFor(Scenario s)
    {
        ulong total = s.Vms.SelectMany(v => v.Regions.Where(r => r.IsRam)).Aggregate(0UL, (a, r) => a + r.Size);
        return Math.Max(16UL << 30, AlignUp(total, PUD_SIZE) + PUD_SIZE);
    }
}
