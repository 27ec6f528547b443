using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// The model's /dev/kvm: API version 12, KVM_CHECK_EXTENSION on the system fd, KVM_CREATE_VM. VMs take their memory
/// from <see cref="Process"/>'s address space (kvm->mm = current->mm).
/// </summary>
public sealed class ModelKvmSystem : IKvmSystem
{
    private readonly List<ModelKvmVm> _vms = [];
    private long _seq;
    private int _vmsCreated;

    /// <summary>/dev/kvm of <paramref name="host"/>, opened by <paramref name="process"/>.</summary>
    public ModelKvmSystem(Host host, Process process, KvmProfile? profile = null)
    {
        Host = host;
        Process = process;
        Profile = profile ?? KvmProfile.Arm64;
    }

    /// <summary>/dev/kvm of <paramref name="host"/> opened by a new process named "vmm" (handy for memslot replays).</summary>
    public ModelKvmSystem(Host host, KvmProfile? profile = null)
        : this(host, host.CreateProcess("vmm"), profile)
    {
    }

    public Host Host { get; }

    /// <summary>The process whose mm the VMs use.</summary>
    public Process Process { get; }

    public KvmProfile Profile { get; }

    /// <summary>
    /// Receives the kernel model's decisions as typed events (memslots, faults, stage-2 writes, CMOs, accesses).
    /// Null by default: then no event is built and the hot paths allocate nothing.
    /// </summary>
    public IKernelObserver? Observer { get; set; }

    /// <summary>The next event sequence number.</summary>
    internal long NextSeq() => ++_seq;

    public KvmArch Arch => Profile.Arch;

    /// <summary>The VMs created and not disposed.</summary>
    public IReadOnlyList<ModelKvmVm> Vms => _vms;

    public int GetApiVersion() => 12;

    public KvmResult<long> CheckExtension(uint cap) => Capabilities.Check(this, null, cap);

    /// <summary>
    /// KVM_CREATE_VM. arm64: bits [7:0] are the IPA size (0 = 40 bits); 32..kvm_ipa_limit accepted, anything else or
    /// any other bit set is EINVAL (kvm_arm_setup_stage2). x86_64: only type 0 (KVM_X86_DEFAULT_VM) is modelled.
    /// </summary>
    public KvmResult<IKvmVm> CreateVm(ulong type = 0)
    {
        int ipaBits;
        if (Profile.Arch == KvmArch.Arm64)
        {
            if ((type & ~0xFFUL) != 0)
                return Errno.EINVAL;
            var limit = Host.Cpu.IpaLimitBits;
            var phys = (int)(type & 0xFF);
            if (phys == 0)
            {
                phys = 40;
                if (phys > limit)
                    return Errno.EINVAL;
            }
            else if (phys > limit || phys < 32)
            {
                return Errno.EINVAL;
            }
            ipaBits = phys;
        }
        else
        {
            if (type != 0)
                return Errno.EINVAL;
            ipaBits = Profile.X86MaxGpaBits;
        }
        var vm = new ModelKvmVm(this, ipaBits, ++_vmsCreated);
        _vms.Add(vm);
        return KvmResult<IKvmVm>.Ok(vm);
    }

    /// <summary>CreateVm returning the model type (for callers that want the model's extra API).</summary>
    public KvmResult<ModelKvmVm> CreateModelVm(ulong type = 0)
    {
        var r = CreateVm(type);
        return r.IsOk ? KvmResult<ModelKvmVm>.Ok((ModelKvmVm)r.Value) : r.Error;
    }

    internal void Forget(ModelKvmVm vm) => _vms.Remove(vm);

    public void Dispose()
    {
        foreach (var vm in _vms.ToArray())
            vm.Dispose();
    }
}

/// <summary>KVM_CHECK_EXTENSION answers (kvm_vm_ioctl_check_extension_generic + the arm64 arch part).</summary>
internal static class Capabilities
{
    public static KvmResult<long> Check(ModelKvmSystem kvm, ModelKvmVm? vm, uint cap)
    {
        var p = kvm.Profile;
        var arm = p.Arch == KvmArch.Arm64;
        switch (cap)
        {
            case KvmCap.USER_MEMORY:
            case KvmCap.SYNC_MMU:
            case KvmCap.USER_MEMORY2:
                return KvmResult<long>.Ok(1);
            case KvmCap.READONLY_MEM:
                return KvmResult<long>.Ok(p.ReadonlyMem ? 1 : 0);
            case KvmCap.NR_MEMSLOTS:
                return KvmResult<long>.Ok(p.UserMemSlots);
            case KvmCap.NR_VCPUS:
                return KvmResult<long>.Ok(Math.Min(kvm.Host.CpuCount, p.MaxVcpus));
            case KvmCap.MAX_VCPUS:
                return KvmResult<long>.Ok(p.MaxVcpus);
            case KvmCap.MULTI_ADDRESS_SPACE:
                // Only compiled in when KVM_MAX_NR_ADDRESS_SPACES > 1; otherwise an unknown cap (0).
                return KvmResult<long>.Ok(p.AddressSpaces > 1 ? p.AddressSpaces : 0);
            case KvmCap.GUEST_MEMFD:
                return KvmResult<long>.Ok(GuestMemfdSupported(kvm) ? 1 : 0);
            case KvmCap.GUEST_MEMFD_FLAGS:
                // kvm_gmem_get_supported_flags(): MMAP, and INIT_SHARED (also asked on the system fd).
                return KvmResult<long>.Ok(GuestMemfdSupported(kvm) ? (long)(GuestMemfdFlags.MMAP | GuestMemfdFlags.INIT_SHARED) : 0);
            case KvmCap.ARM_MTE:
                return KvmResult<long>.Ok(arm && kvm.Host.Cpu.HasMte ? 1 : 0); // system_supports_mte()
            case KvmCap.ARM_VM_IPA_SIZE:
                return KvmResult<long>.Ok(arm ? kvm.Host.Cpu.IpaLimitBits : 0);
            case KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED:
                // Rule 2: the design answers (6.17+: VM fd 0/1, system fd EINVAL; before: unknown, 0).
                return arm ? kvm.Host.Design.CacheablePfnmapCapability(kvm.Host.Cpu, vm is not null) : KvmResult<long>.Ok(0);
            default:
                return KvmResult<long>.Ok(0);
        }
    }

    /// <summary>guest_memfd: per the profile, else arm64 from 6.18 (the design's base version).</summary>
    public static bool GuestMemfdSupported(ModelKvmSystem kvm) =>
        kvm.Profile.GuestMemfd ?? kvm.Host.Design.BaseVersion >= new Designs.KernelVersion(6, 18);
}
