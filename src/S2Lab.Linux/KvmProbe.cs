using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux;

/// <summary>One KVM_CHECK_EXTENSION answer: the value, or the errno the ioctl failed with.</summary>
public readonly record struct CapAnswer(long Value, Errno Error)
{
    public bool IsOk => Error == Errno.None;

    public static CapAnswer From(KvmResult<long> r) => r.IsOk ? new(r.Value, Errno.None) : new(0, r.Error);

    public override string ToString() => IsOk ? Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"-1/{Error}";
}

/// <summary>A capability S2Lab reads, asked on the system fd and on a VM fd.</summary>
public sealed record CapProbe(uint Number, string Name, CapAnswer System, CapAnswer? Vm);

/// <summary>Memslot limits measured on a scratch VM with a one-page anonymous mapping as backing.</summary>
/// <param name="MaxGpaBits">The largest n for which a one-page slot ending at 2^n is accepted (the IPA/GPA limit the arch hook enforces).</param>
/// <param name="BeyondGpaError">The errno for the first slot past that limit (arm64: EFAULT, rule 4; x86: EINVAL).</param>
/// <param name="LastUserSlotError">The result of creating slot id NR_MEMSLOTS - 1 (expected: success).</param>
/// <param name="FirstBadSlotError">The result of creating slot id NR_MEMSLOTS (expected: EINVAL, rule 20).</param>
/// <param name="GuestMemfdPlain">KVM_CREATE_GUEST_MEMFD(4096, flags 0).</param>
/// <param name="GuestMemfdMmap">KVM_CREATE_GUEST_MEMFD(4096, GUEST_MEMFD_FLAG_MMAP).</param>
public sealed record MemslotLimits(int MaxGpaBits, Errno BeyondGpaError, Errno LastUserSlotError, Errno FirstBadSlotError,
    Errno GuestMemfdPlain, Errno GuestMemfdMmap);

/// <summary>What the KVM on this machine says: the content of a host profile.</summary>
public sealed record HostProfile(
    LinuxHostInfo Host, int PageSize, string DevicePath, int ApiVersion, IReadOnlyList<CapProbe> Caps, Errno VmCreateError,
    MemslotLimits? Memslots)
{
    /// <summary>The answer for one capability on the VM fd (falling back to the system fd when no VM could be created).</summary>
    public CapAnswer? Cap(uint number) => Caps.FirstOrDefault(c => c.Number == number) is { } c ? c.Vm ?? c.System : null;
}

/// <summary>Asks a real KVM the questions S2Lab cares about (s2lab probe).</summary>
public static class KvmProbe
{
    /// <summary>The capabilities probed, by number and uAPI name: the ones docs/rules.md names, and the neighbours that decide memslot behaviour.</summary>
    public static readonly IReadOnlyList<(uint Number, string Name)> Capabilities =
    [
        (KvmCap.USER_MEMORY, "KVM_CAP_USER_MEMORY"),
        (KvmCap.NR_VCPUS, "KVM_CAP_NR_VCPUS"),
        (KvmCap.NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS"),
        (KvmCap.SYNC_MMU, "KVM_CAP_SYNC_MMU"),
        (KvmCap.MAX_VCPUS, "KVM_CAP_MAX_VCPUS"),
        (KvmCap.READONLY_MEM, "KVM_CAP_READONLY_MEM"),
        (KvmCap.MULTI_ADDRESS_SPACE, "KVM_CAP_MULTI_ADDRESS_SPACE"),
        (128, "KVM_CAP_MAX_VCPU_ID"),
        (KvmCap.ARM_VM_IPA_SIZE, "KVM_CAP_ARM_VM_IPA_SIZE"),
        (168, "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"),
        (192, "KVM_CAP_DIRTY_LOG_RING"),
        (205, "KVM_CAP_ARM_MTE"),
        (KvmCap.USER_MEMORY2, "KVM_CAP_USER_MEMORY2"),
        (233, "KVM_CAP_MEMORY_ATTRIBUTES"),
        (KvmCap.GUEST_MEMFD, "KVM_CAP_GUEST_MEMFD"),
        (235, "KVM_CAP_VM_TYPES"),
        (236, "KVM_CAP_PRE_FAULT_MEMORY"),
        (KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED, "KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED"),
        (KvmCap.GUEST_MEMFD_FLAGS, "KVM_CAP_GUEST_MEMFD_FLAGS"),
        (245, "KVM_CAP_ARM_SEA_TO_USER"),
    ];

    /// <summary>Probes an open KVM. Creates (and disposes) one scratch VM; changes nothing on the host.</summary>
    public static HostProfile Probe(LinuxKvmSystem kvm)
    {
        var api = kvm.GetApiVersion();
        var vm = kvm.CreateLinuxVm();
        try
        {
            var caps = Capabilities
                .Select(c => new CapProbe(c.Number, c.Name, CapAnswer.From(kvm.CheckExtension(c.Number)),
                    vm.IsOk ? CapAnswer.From(vm.Value.CheckExtension(c.Number)) : null))
                .ToList();
            MemslotLimits? limits = null;
            if (vm.IsOk)
            {
                var nrSlots = caps.First(c => c.Number == KvmCap.NR_MEMSLOTS).Vm!.Value;
                limits = MeasureMemslots(kvm, nrSlots.IsOk ? (uint)nrSlots.Value : 0);
            }
            return new HostProfile(kvm.Host, LinuxHostInfo.PageSize, kvm.Path, api, caps, vm.IsOk ? Errno.None : vm.Error, limits);
        }
        finally
        {
            if (vm.IsOk)
                vm.Value.Dispose();
        }
    }

    private static MemslotLimits? MeasureMemslots(LinuxKvmSystem kvm, uint nrSlots)
    {
        var page = (ulong)LinuxHostInfo.PageSize;
        using var backing = AnonymousMemory.Map(page) is { IsOk: true } m ? m.Value : null;
        if (backing is null)
            return null;

        // Each question on a fresh VM so that earlier answers cannot influence later ones.
        Errno OnFreshVm(Func<LinuxKvmVm, Errno> ask)
        {
            var vm = kvm.CreateLinuxVm();
            if (!vm.IsOk)
                return vm.Error;
            using (vm.Value)
                return ask(vm.Value);
        }
        Errno OnePage(LinuxKvmVm vm, uint slot, ulong gpa) =>
            vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(slot, 0, gpa, page, backing.Address));

        var maxBits = 0;
        var beyond = Errno.None;
        for (var bits = 13; bits <= 64; bits++)
        {
            var end = bits == 64 ? 0UL : 1UL << bits; // a slot ending exactly at 2^64 wraps (rule 27)
            var r = OnFreshVm(vm => OnePage(vm, 0, end - page));
            if (r != Errno.None)
            {
                beyond = r;
                break;
            }
            maxBits = bits;
        }

        var last = nrSlots > 0 ? OnFreshVm(vm => OnePage(vm, nrSlots - 1, 0)) : Errno.EINVAL;
        var first = nrSlots > 0 ? OnFreshVm(vm => OnePage(vm, nrSlots, 0)) : Errno.EINVAL;
        var gmemPlain = OnFreshVm(vm => vm.CreateGuestMemfd(page, 0) is var r && r.IsOk ? Errno.None : r.Error);
        var gmemMmap = OnFreshVm(vm => vm.CreateGuestMemfd(page, (ulong)GuestMemfdFlags.MMAP) is var r && r.IsOk ? Errno.None : r.Error);
        return new MemslotLimits(maxBits, beyond, last, first, gmemPlain, gmemMmap);
    }
}
