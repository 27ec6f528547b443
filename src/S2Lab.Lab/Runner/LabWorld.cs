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

/// <summary>One model host of a run: the kernel <see cref="Host"/>, its devices, and what the runner probed.</summary>
internal sealed class LabHost
{
    private readonly Dictionary<(string, string), ModelDeviceRegion> _regions = [];
    private readonly ModelVfioHost _vfio = new();
    private readonly ModelGuestLoader _guest = new();
    private readonly ModelFiles _files = new();
    private readonly ConditionalWeakTable<VmmHost, ModelKvmSystem> _kvms = [];
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
        var kvm = Host.OpenKvm(p, Spec.KvmProfile);
        var vmm = new VmmHost(Name, kvm, new ModelAddressSpace(p, _vfio, _files), _vfio, _guest);
        _kvms.Add(vmm, kvm);
        return vmm;
    }

    /// <summary>
    /// The Lab's event log of the /dev/kvm that <paramref name="vmm"/> (made by <see cref="NewVmm"/>) opened, attached on
    /// first use (<see cref="KernelEventLog.Of"/>): what the Lab learns of the kernel's decisions, beside what the VMM's
    /// calls return.
    /// </summary>
    public KernelEventLog Events(VmmHost vmm) =>
        _kvms.TryGetValue(vmm, out var kvm) ? KernelEventLog.Of(kvm) : throw new ArgumentException($"VMM {vmm.HostName} was not made by this host", nameof(vmm));

    /// <summary>
    /// The VMA a VMM of this host created for <paramref name="r"/> (null if it never mapped it): the Lab's view, not
    /// the VMM's. For a region of several VMAs (<see cref="MappedPieces"/>), the VMA that is at <paramref name="offset"/> now
    /// (null in a hole).
    /// </summary>
    public static Vma? VmaOf(VmmHost vmm, RegionSetup r, ulong offset = 0) =>
        vmm.Memory is not ModelAddressSpace m || r.MappedSize == 0 ? null
        : r.Config.Backing is MappedPieces ? m.Mm.FindVma(r.Hva + offset)
        : m.MappingAt(new Hva(r.Hva));

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
