using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Vmm;

/// <summary>What happened to one region when the VMM set it up.</summary>
public enum RegionOutcome
{
    /// <summary>Mapped and its memslot created.</summary>
    Created,

    /// <summary>The VMM declined to assign it (policy); no memslot call was made.</summary>
    Refused,

    /// <summary>mmap or KVM_SET_USER_MEMORY_REGION failed (see the errno).</summary>
    Failed,

    /// <summary>Not attempted because the VM was refused.</summary>
    Skipped,
}

/// <summary>One region as the VMM set it up: its mapping, memslot and outcome.</summary>
/// <param name="Hva">Where the VMM mapped it (0 if it is not mapped).</param>
/// <param name="Call">The call that failed ("mmap", "KVM_SET_USER_MEMORY_REGION"), if any.</param>
/// <param name="Detail">Why it was refused or what failed, in words.</param>
/// <param name="Device">For a device region: the opened vfio device.</param>
/// <param name="DeviceRegion">For a device region: its struct vfio_region_info.</param>
public sealed record RegionSetup(
    RegionConfig Config, uint Slot, ulong Hva, KvmMemFlags Flags, RegionOutcome Outcome, string Call, Errno Errno, string Detail,
    VfioDevice? Device = null, VfioRegionInfo? DeviceRegion = null)
{
    public string Name => Config.Name;

    /// <summary>Bytes the VMM has mapped at <see cref="Hva"/> (0 when the mmap failed or was never made).</summary>
    public ulong MappedSize { get; init; }

    /// <summary>What the region is to the VMM; null for RAM.</summary>
    public DeviceRegionRole? Role => Device is { } d && DeviceRegion is { } r ? DeviceMemoryPolicy.Role(d, r) : null;

    /// <summary>A device region of registers, not memory (its contents do not move with the VMM's copy).</summary>
    public bool IsDeviceRegisters => Role == DeviceRegionRole.Registers;

    /// <summary>Device memory its driver maps cacheable (<see cref="DeviceMemoryPolicy"/>; rule 3).</summary>
    public bool IsCacheableDeviceMemory => Role == DeviceRegionRole.CacheableMemory;
}

/// <summary>The outcome of starting a VM.</summary>
public enum StartOutcome
{
    Started,

    /// <summary>The VMM refused before creating memslots (policy).</summary>
    Refused,

    /// <summary>A KVM call or an mmap failed; the VM was torn down.</summary>
    Failed,
}

/// <summary>The result of <see cref="Vmm.Start"/>.</summary>
/// <param name="Cap243">KVM_CHECK_EXTENSION(243) on the VM fd as the VMM saw it.</param>
/// <param name="Vm">The running VM when <see cref="Outcome"/> is <see cref="StartOutcome.Started"/>.</param>
public sealed record StartReport(StartOutcome Outcome, string Reason, string FailedCall, Errno Errno, KvmResult<long> Cap243, IReadOnlyList<RegionSetup> Regions, VirtualMachine? Vm);

/// <summary>A VM the VMM runs: its KVM handles, its regions and their mappings.</summary>
public sealed class VirtualMachine : IDisposable
{
    private readonly List<RegionSetup> _regions;
    private bool _disposed;

    internal VirtualMachine(VmConfig config, VmmHost host, VmmPolicy policy, IKvmVm vm, IReadOnlyList<IKvmVcpu> vcpus, List<RegionSetup> regions, KvmResult<long> cap243, bool useRegion2)
    {
        UsesRegion2 = useRegion2;
        Config = config;
        Host = host;
        Policy = policy;
        Kvm = vm;
        Vcpus = vcpus;
        _regions = regions;
        Cap243 = cap243;
    }

    public VmConfig Config { get; }

    public VmmHost Host { get; }

    public VmmPolicy Policy { get; }

    /// <summary>The VM fd.</summary>
    public IKvmVm Kvm { get; }

    public IReadOnlyList<IKvmVcpu> Vcpus { get; }

    /// <summary>Every region, in memslot order.</summary>
    public IReadOnlyList<RegionSetup> Regions => _regions;

    /// <summary>KVM_CHECK_EXTENSION(243) on this VM's fd.</summary>
    public KvmResult<long> Cap243 { get; }

    /// <summary>Whether the VMM uses KVM_SET_USER_MEMORY_REGION2 (KVM_CAP_USER_MEMORY2), as QEMU does where it exists.</summary>
    public bool UsesRegion2 { get; }

    /// <summary>Whether the guest is paused (stop-and-copy): a paused guest does not run.</summary>
    public bool Paused { get; internal set; }

    /// <summary>Whether the VM has been destroyed (stopped, or migrated away).</summary>
    public bool IsDestroyed => _disposed;

    public RegionSetup Region(string name) => _regions.First(r => r.Name == name);

    /// <summary>mprotect(2) of part of a region's host mapping, as the VMM process.</summary>
    public Errno Mprotect(string region, ulong offset, ulong size, Prot prot) =>
        Host.Memory.Protect(new Hva(Region(region).Hva + offset), size, prot);

    /// <summary>munmap(2) of part of a region's host mapping, as the VMM process.</summary>
    public Errno Munmap(string region, ulong offset, ulong size) =>
        Host.Memory.Unmap(new Hva(Region(region).Hva + offset), size);

    /// <summary>
    /// mmap(2) of the device file <paramref name="path"/> with MAP_SHARED|MAP_FIXED, read-write, over part of a region's
    /// host mapping, as the VMM process; the memslot stays as it is (KVM sees the new VMA only at the next fault).
    /// </summary>
    public Errno MapFile(string region, ulong offset, ulong size, string path) =>
        Host.Memory.MapFileFixed(path, new Hva(Region(region).Hva + offset), size, Prot.PROT_READ | Prot.PROT_WRITE) is { IsOk: false } m ? m.Error : Errno.None;

    /// <summary>
    /// Turns KVM_MEM_LOG_DIRTY_PAGES on or off for a region's memslot (KVM_MR_FLAGS_ONLY), as a VMM starting or ending
    /// dirty tracking does; KVM's errno comes back (EINVAL for a VM_PFNMAP region, rule 6).
    /// </summary>
    public Errno SetDirtyLogging(string region, bool on)
    {
        var r = Region(region);
        return SetSlotFlags(r, on ? r.Flags | KvmMemFlags.LOG_DIRTY_PAGES : r.Flags & ~KvmMemFlags.LOG_DIRTY_PAGES);
    }

    /// <summary>Updates a region's memslot flags (KVM_MR_FLAGS_ONLY), e.g. to start dirty logging.</summary>
    internal Errno SetSlotFlags(RegionSetup region, KvmMemFlags flags)
    {
        var e = Vmm.SetRegion(Kvm, UsesRegion2, region.Slot, flags, region.Config.Gpa, region.Config.Size, region.Hva);
        if (e == Errno.None)
            _regions[_regions.IndexOf(region)] = region with { Flags = flags };
        return e;
    }

    /// <summary>Destroys the VM: closes the vCPU and VM fds and unmaps its memory.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Vmm.TearDown(Host, Kvm, Vcpus, _regions);
    }
}

/// <summary>
/// The userspace VMM: builds a VM from a <see cref="VmConfig"/> on a <see cref="VmmHost"/>. It talks to KVM only
/// through <see cref="IKvmSystem"/>/<see cref="IKvmVm"/>/<see cref="IKvmVcpu"/> and to the host through mmap.
/// </summary>
public static class Vmm
{
    /// <summary>
    /// Starts a VM: KVM_CREATE_VM, capability 243 on the VM fd, one mmap and one memslot per region (in order),
    /// then the vCPUs. With <see cref="CapabilityPolicy.CheckCapability"/> a VM with cacheable device memory is refused
    /// where capability 243 is not 1. Every memslot is attempted so that each region's outcome is known; any failure
    /// tears the VM down.
    /// </summary>
    public static StartReport Start(VmmHost host, VmConfig config, VmmPolicy policy)
    {
        var vmResult = host.Kvm.CreateVm((ulong)(config.IpaBits == 40 ? 0 : config.IpaBits));
        if (!vmResult.IsOk)
            return new StartReport(StartOutcome.Failed, $"KVM_CREATE_VM failed with {vmResult.Error}", "KVM_CREATE_VM", vmResult.Error, vmResult.Error, [], null);
        var vm = vmResult.Value;
        if (config.Mte && vm.EnableCap(KvmCap.ARM_MTE) is var mteError and not Errno.None)
        {
            vm.Dispose();
            return new StartReport(StartOutcome.Failed, $"KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) failed with {mteError}", "KVM_ENABLE_CAP", mteError, mteError, [], null);
        }

        var cap = vm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var region2 = vm.CheckExtension(KvmCap.USER_MEMORY2) is { IsOk: true, Value: > 0 };

        // 1. Map every region into the VMM.
        var regions = new List<RegionSetup>();
        uint slot = 0;
        foreach (var rc in config.Regions)
            regions.Add(MapRegion(host, rc, slot++));

        var mapFailure = regions.FirstOrDefault(r => r.Outcome == RegionOutcome.Failed);
        if (mapFailure is not null)
        {
            TearDown(host, vm, [], regions);
            return new StartReport(StartOutcome.Failed, $"{mapFailure.Name}: {mapFailure.Detail}", "mmap", mapFailure.Errno, cap, regions, null);
        }

        // 2. The policy's capability check.
        if (policy.Capability == CapabilityPolicy.CheckCapability && !(cap.IsOk && cap.Value == 1))
        {
            var cacheable = regions.Where(r => WantsCacheable(r, policy)).Select(r => r.Name).ToList();
            if (cacheable.Count > 0)
            {
                var why = $"KVM_CHECK_EXTENSION(KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED = 243) on the VM fd is {cap}: this host cannot map cacheable device memory";
                regions = regions.Select(r => WantsCacheable(r, policy)
                    ? r with { Outcome = RegionOutcome.Refused, Detail = why }
                    : r with { Outcome = RegionOutcome.Skipped, Detail = "VM refused" }).ToList();
                TearDown(host, vm, [], regions);
                return new StartReport(StartOutcome.Refused, $"cacheable device memory ({string.Join(", ", cacheable)}) but {why}", "", Errno.None, cap, regions, null);
            }
        }

        // 3. One memslot per region.
        for (int i = 0; i < regions.Count; i++)
            regions[i] = CreateMemslot(vm, region2, regions[i], policy);
        var failed = regions.FirstOrDefault(r => r.Outcome == RegionOutcome.Failed);
        if (failed is not null)
        {
            TearDown(host, vm, [], regions);
            return new StartReport(StartOutcome.Failed, $"{failed.Name}: {failed.Call} failed with {failed.Errno}",
                $"{failed.Call} slot {failed.Slot} ({failed.Name})", failed.Errno, cap, regions, null);
        }

        // 4. vCPUs.
        var vcpus = new List<IKvmVcpu>();
        for (uint id = 0; id < config.Vcpus; id++)
        {
            var v = vm.CreateVcpu(id);
            if (!v.IsOk)
            {
                TearDown(host, vm, vcpus, regions);
                return new StartReport(StartOutcome.Failed, $"KVM_CREATE_VCPU {id} failed with {v.Error}", "KVM_CREATE_VCPU", v.Error, cap, regions, null);
            }

            vcpus.Add(v.Value);
        }

        return new StartReport(StartOutcome.Started, "", "", Errno.None, cap, regions,
            new VirtualMachine(config, host, policy, vm, vcpus, regions, cap, region2));
    }

    /// <summary>
    /// Step 1 of <see cref="Start"/> for one region: maps it into the VMM (anonymous or hugetlb RAM, a vfio region, or
    /// the pieces of a <see cref="MappedPieces"/> region), with no memslot yet. <c>s2lab explain</c> maps its one
    /// region with it too, so that it sets up memory as a run does.
    /// </summary>
    public static RegionSetup MapRegion(VmmHost host, RegionConfig rc, uint slot)
    {
        const Prot rw = Prot.PROT_READ | Prot.PROT_WRITE;
        RegionSetup Failed(string call, Errno e, string detail, VfioDevice? dev = null, VfioRegionInfo? info = null) =>
            new(rc, slot, 0, KvmMemFlags.None, RegionOutcome.Failed, call, e, detail, dev, info);
        VfioDevice? device = null;
        VfioRegionInfo? region = null;
        KvmResult<Hva> mapped;
        switch (rc.Backing)
        {
            case AnonymousRam:
                mapped = host.Memory.MapAnonymous(rc.Size, rw, rc.Name);
                break;
            case HugetlbRam h:
                mapped = host.Memory.MapHugetlb(rc.Size, h.HugePageSize, rw, rc.Name);
                break;
            case DeviceMemory d:
                var opened = host.Vfio.Open(d.Device);
                var index = opened.IsOk ? DeviceMemoryPolicy.RegionIndex(opened.Value.Driver, d.Region) : null;
                if (index is not { } i || opened.Value.Region(i) is not { } info)
                    return Failed("open", Errno.ENODEV, $"host {host.HostName} has no {d.Device}.{d.Region}");
                (device, region) = (opened.Value, info);
                mapped = host.Memory.MapDeviceRegion(device, info, rw);
                break;
            case MappedPieces pieces:
                mapped = MapPieces(host.Memory, rc, pieces, rw);
                break;
            default:
                throw new ArgumentException($"unknown backing {rc.Backing}");
        }

        if (!mapped.IsOk)
            return Failed("mmap", mapped.Error, $"mmap failed with {mapped.Error}", device, region);
        return new RegionSetup(rc, slot, mapped.Value.Value, KvmMemFlags.None, RegionOutcome.Created, "", Errno.None, "", device, region)
        {
            MappedSize = region?.Size ?? rc.Size,
        };
    }

    /// <summary>The mappings of a <see cref="MappedPieces"/> region (see there); on any failure nothing stays mapped.</summary>
    private static KvmResult<Hva> MapPieces(IHostAddressSpace memory, RegionConfig rc, MappedPieces pieces, Prot prot)
    {
        var reserved = memory.MapAnonymous(rc.Size, Prot.PROT_NONE, rc.Name);
        if (!reserved.IsOk)
            return reserved;
        var start = reserved.Value;
        var covered = 0UL;
        foreach (var p in pieces.Pieces.OrderBy(p => p.Offset))
        {
            var e = p.Path is null ? memory.Protect(start + p.Offset, p.Size, prot)
                : memory.MapFileFixed(p.Path, start + p.Offset, p.Size, prot) is { IsOk: false } m ? m.Error : Errno.None;
            if (e == Errno.None && p.Offset > covered)
                e = memory.Unmap(start + covered, p.Offset - covered);
            if (e != Errno.None)
            {
                memory.Unmap(start, rc.Size);
                return e;
            }

            covered = p.Offset + p.Size;
        }

        if (covered < rc.Size && memory.Unmap(start + covered, rc.Size - covered) is var u and not Errno.None)
        {
            memory.Unmap(start, rc.Size);
            return u;
        }

        return reserved;
    }

    /// <summary>
    /// Whether the VMM counts on a cacheable stage-2 mapping of this region: cacheable device memory, unless the kernel
    /// lets the VMM choose (memslot flag) and it chose to stay migratable.
    /// </summary>
    public static bool WantsCacheable(RegionSetup r, VmmPolicy policy) =>
        r.IsCacheableDeviceMemory && (!policy.KernelHasCacheableFlag || policy.FlagChoice == CacheableFlagChoice.PreferCacheable);

    /// <summary>
    /// The memslot flags the VMM asks for: READONLY for read-only regions; LOG_DIRTY_PAGES for regions logged from
    /// creation; the cacheable flag per policy (<see cref="WantsCacheable"/>: from the driver and region, not the VMA).
    /// <c>s2lab explain</c> asks it too, so that it shows what the VMM does.
    /// </summary>
    public static KvmMemFlags FlagsFor(RegionSetup r, VmmPolicy policy)
    {
        var flags = r.Config.ReadOnly ? KvmMemFlags.READONLY : KvmMemFlags.None;
        if (r.Config.LogDirty)
            flags |= KvmMemFlags.LOG_DIRTY_PAGES;
        if (policy.KernelHasCacheableFlag && WantsCacheable(r, policy))
            flags |= KvmMemFlags.ENABLE_CACHEABLE_PFNMAP;
        return flags;
    }

    private static RegionSetup CreateMemslot(IKvmVm vm, bool region2, RegionSetup r, VmmPolicy policy)
    {
        var flags = FlagsFor(r, policy);
        var e = SetRegion(vm, region2, r.Slot, flags, r.Config.Gpa, r.Config.Size, r.Hva);
        var call = region2 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION";
        return e == Errno.None
            ? r with { Flags = flags }
            : r with { Flags = flags, Outcome = RegionOutcome.Failed, Call = call, Errno = e, Detail = $"{call} slot {r.Slot} failed with {e}" };
    }

    /// <summary>KVM_SET_USER_MEMORY_REGION2 where the kernel has it (new flags need it: rule 19), else the v1 ioctl.</summary>
    internal static Errno SetRegion(IKvmVm vm, bool region2, uint slot, KvmMemFlags flags, ulong gpa, ulong size, ulong hva) =>
        region2
            ? vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(slot, (uint)flags, gpa, size, hva, 0, 0))
            : vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(slot, (uint)flags, gpa, size, hva));

    internal static void TearDown(VmmHost host, IKvmVm vm, IReadOnlyList<IKvmVcpu> vcpus, IReadOnlyList<RegionSetup> regions)
    {
        foreach (var v in vcpus)
            v.Dispose();
        vm.Dispose();
        foreach (var r in regions.Where(r => r.MappedSize != 0))
            host.Memory.Unmap(new Hva(r.Hva), r.MappedSize);
    }

}
