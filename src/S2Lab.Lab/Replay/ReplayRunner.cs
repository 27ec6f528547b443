using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Replay;

/// <summary>
/// Runs a replay file against any <see cref="IKvmSystem"/> (the model or the real kernel), one result per operation.
/// All VMs and guest_memfds stay open until the run ends, so that a later line can use an earlier VM's guest_memfd.
/// </summary>
public static class ReplayRunner
{
    /// <summary>The guest_memfd field value used for a descriptor that is not open (gmem -1 or a failed create_gmem).</summary>
    public const uint ClosedDescriptor = uint.MaxValue;

    /// <summary>
    /// The stage-1 attribute an access line's op carries. The oracle guest's MMU is off (the program's SCTLR_EL1 is
    /// <see cref="SctlrEl1.None"/>), so no stage-1 attribute applies: data accesses are Device-nGnRnE and fetches Normal
    /// Non-cacheable whatever this says. It is Normal write-back, the value a loader without guest page tables accepts.
    /// </summary>
    public const byte DataMair = 0xFF;

    /// <summary>The stage-1 attribute of a fetch line's op (as <see cref="DataMair"/>: not used with the MMU off).</summary>
    public const byte FetchMair = 0xFF;

    /// <summary>The value a write line stores (the oracle probe's "str xzr, [x3]" pair as a doubleword).</summary>
    public const ulong WrittenValue = 0xf900007ff900007fUL;

    /// <summary>
    /// Executes <paramref name="ops"/> in order. enable_cap, mmap, munmap, vcpu and access lines need
    /// <paramref name="host"/> (the VMM's address space and a guest loader; the special mmap kinds also its
    /// <see cref="ReplayHost.Mappings"/>); without one they fail with ENOSYS.
    /// </summary>
    public static IReadOnlyList<ReplayStep> Run(IKvmSystem kvm, IEnumerable<ReplayOp> ops, ReplayHost? host = null)
    {
        var steps = new List<ReplayStep>();
        var vms = new List<IKvmVm>();
        var vcpus = new Dictionary<IKvmVm, (IKvmVcpu Vcpu, Hva Code, ulong CodeIpa)>(ReferenceEqualityComparer.Instance);
        IKvmVm? newest = null;
        var newestFailed = false;
        var gmems = new List<int?>();
        try
        {
            foreach (var op in ops)
            {
                Errno result;
                long? value = null;
                string? exit = null, leaf = null, note = null;
                var vmUsable = newest is not null && !newestFailed;
                switch (op)
                {
                    case CapOp c:
                        if (c.OnVmFd && !vmUsable)
                        {
                            result = Errno.EBADF;
                            break;
                        }
                        var cap = c.OnVmFd ? newest!.CheckExtension(c.Cap) : kvm.CheckExtension(c.Cap);
                        result = cap.IsOk ? Errno.None : cap.Error;
                        value = cap.IsOk ? cap.Value : null;
                        break;
                    case EnableCapOp e:
                        result = host is null ? Errno.ENOSYS : vmUsable ? newest!.EnableCap(e.Cap) : Errno.EBADF;
                        break;
                    case MmapOp m:
                        result = host is null ? Errno.ENOSYS : Mmap(host, m);
                        if (host is { Mappings: null } && m.Kind is not (ReplayVmaKind.Anon or ReplayVmaKind.AnonRo))
                            note = $"{ReplayNames.Name(m.Kind)} maps RAM the host kernel does not own, through the oracle's driver; this backend has none";
                        break;
                    case MunmapOp u:
                        result = host?.Memory.Unmap(new Hva(u.UserspaceAddr), u.Size) ?? Errno.ENOSYS;
                        break;
                    case VcpuOp v:
                        result = host is null ? Errno.ENOSYS : vmUsable ? CreateVcpu(host, newest!, v, vcpus) : Errno.EBADF;
                        break;
                    case AccessOp a:
                        if (host is null)
                        {
                            result = Errno.ENOSYS;
                            break;
                        }
                        if (!vmUsable)
                        {
                            result = Errno.EBADF;
                            break;
                        }
                        (result, exit, leaf) = vcpus.TryGetValue(newest!, out var cpu) ? Access(host, cpu, a) : (Errno.EBADF, null, null);
                        if (result == Errno.EINVAL && exit is null)
                            note = host.Refusal?.Invoke();
                        break;
                    case CreateVmOp c:
                        var vm = kvm.CreateVm(c.Type);
                        if (vm.IsOk)
                        {
                            vms.Add(vm.Value);
                            newest = vm.Value;
                            newestFailed = false;
                            result = Errno.None;
                        }
                        else
                        {
                            // A VMM that ignores the failure would go on with fd -1: every VM ioctl gives EBADF.
                            newestFailed = true;
                            result = vm.Error;
                        }
                        break;
                    case CreateGmemOp g:
                        if (newest is null || newestFailed)
                        {
                            gmems.Add(null);
                            result = Errno.EBADF;
                            break;
                        }
                        var fd = newest.CreateGuestMemfd(g.Size, g.Flags);
                        gmems.Add(fd.IsOk ? fd.Value : null);
                        result = fd.IsOk ? Errno.None : fd.Error;
                        break;
                    case SetRegionOp s:
                        if (newest is null || newestFailed)
                        {
                            result = Errno.EBADF;
                            break;
                        }
                        if (s.Version == 1)
                        {
                            result = newest.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(s.Slot, s.Flags, s.GuestPhysAddr, s.MemorySize, s.UserspaceAddr));
                        }
                        else
                        {
                            var gfd = s.Gmem >= 0 && s.Gmem < gmems.Count && gmems[s.Gmem] is { } open ? (uint)open : ClosedDescriptor;
                            result = newest.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(s.Slot, s.Flags, s.GuestPhysAddr, s.MemorySize,
                                s.UserspaceAddr, s.GmemOffset, gfd));
                        }
                        break;
                    default:
                        throw new ArgumentException($"unknown replay operation {op.GetType().Name}", nameof(ops));
                }
                steps.Add(new ReplayStep(op, result, value, exit, leaf, note));
            }
        }
        finally
        {
            foreach (var (cpu, _, _) in vcpus.Values)
                cpu.Dispose();
            foreach (var vm in vms)
                vm.Dispose();
        }
        return steps;
    }

    /// <summary>
    /// The mmap line: anonymous memory through the address space (then mprotect(PROT_READ) for anon_ro, which the
    /// probe fills first); the special kinds through the backend's mappings (ENOSYS without them, as the probe answers a
    /// kind it does not know).
    /// </summary>
    private static Errno Mmap(ReplayHost host, MmapOp op)
    {
        const Prot rw = Prot.PROT_READ | Prot.PROT_WRITE;
        if (op.Kind is not (ReplayVmaKind.Anon or ReplayVmaKind.AnonRo))
            return host.Mappings?.Map(op) ?? Errno.ENOSYS;
        var at = new Hva(op.UserspaceAddr);
        var anon = host.Memory.MapAnonymousFixed(at, op.Size, rw, ReplayNames.Name(op.Kind));
        if (!anon.IsOk)
            return anon.Error;
        return op.Kind == ReplayVmaKind.AnonRo ? host.Memory.Protect(at, op.Size, Prot.PROT_READ) : Errno.None;
    }

    /// <summary>The vcpu line: one page of guest code (anonymous, at the line's address), its memslot (v1 ioctl) and vCPU 0.</summary>
    private static Errno CreateVcpu(ReplayHost host, IKvmVm vm, VcpuOp op, Dictionary<IKvmVm, (IKvmVcpu, Hva, ulong)> vcpus)
    {
        var code = host.Memory.MapAnonymousFixed(new Hva(op.UserspaceAddr), PAGE_SIZE, Prot.PROT_READ | Prot.PROT_WRITE, "guest code");
        if (!code.IsOk)
            return code.Error;
        var set = vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(op.Slot, 0, op.GuestPhysAddr, PAGE_SIZE, op.UserspaceAddr));
        if (set != Errno.None)
            return set;
        var vcpu = vm.CreateVcpu(0);
        if (!vcpu.IsOk)
            return vcpu.Error;
        vcpus[vm] = (vcpu.Value, code.Value, op.GuestPhysAddr);
        return Errno.None;
    }

    /// <summary>
    /// The access line: a one-op program loaded into the code page and run with KVM_RUN. KVM_RUN's errno is the result;
    /// an MMIO exit is "mmio"; the program's end is "done", or "abort" where the mappings saw KVM inject an abort
    /// instead. The leaf is the mappings' (null where the backend cannot see the stage-2 table).
    /// </summary>
    private static (Errno Result, string? Exit, string? Leaf) Access(ReplayHost host, (IKvmVcpu Vcpu, Hva Code, ulong CodeIpa) cpu, AccessOp op)
    {
        var guestOp = op.Kind switch
        {
            S2AccessKind.Read => GuestOp.Load(op.GuestPhysAddr, DataMair),
            S2AccessKind.Write => GuestOp.Store(op.GuestPhysAddr, WrittenValue, DataMair),
            _ => GuestOp.Fetch(op.GuestPhysAddr, FetchMair),
        };
        // The oracle's guest runs as KVM_ARM_VCPU_INIT leaves it: SCTLR_EL1.M, C and I clear (translation and caches off).
        var loaded = host.Guest.Load(cpu.Vcpu, cpu.Code, cpu.CodeIpa, GuestProgram.Access(guestOp, SctlrEl1.None));
        if (loaded != Errno.None)
            return (loaded, null, null);
        var run = cpu.Vcpu.Run();
        var (aborted, leaf) = host.Mappings?.AfterAccess(op.GuestPhysAddr) ?? (false, null);
        if (!run.IsOk)
            return (run.Error, null, leaf);
        var exit = run.Value.Reason == KvmExitReason.Mmio ? "mmio"
            : aborted ? "abort"
            : run.Value.Reason == host.Guest.EndExit ? "done"
            : run.Value.Reason.ToString().ToLowerInvariant();
        return (Errno.None, exit, leaf);
    }
}

/// <summary>
/// What a replay needs besides /dev/kvm for its enable_cap, mmap, munmap, vcpu and access lines: the seams a VMM has
/// (<see cref="IHostAddressSpace"/>, <see cref="IGuestLoader"/>) and, where the backend has them, the special mappings.
/// </summary>
/// <param name="Memory">The VMM process's address space: anon and anon_ro mmap lines, munmap, the vCPU's code page.</param>
/// <param name="Guest">Loads each access line's one-op program.</param>
/// <param name="Mappings">The special mmap kinds and what an access showed beyond KVM_RUN's return; null: neither.</param>
/// <param name="Refusal">Why the loader last refused a program (a real loader's reason for EINVAL), or null.</param>
public sealed record ReplayHost(IHostAddressSpace Memory, IGuestLoader Guest, IReplayMappings? Mappings = null, Func<string?>? Refusal = null);

/// <summary>
/// What real userspace gets only from a driver: the six special mmap kinds, which map RAM the host kernel does not own
/// (the arm64 oracle's kernel module; the model's carved RAM, <see cref="ModelReplayMappings"/>), and what the oracle's
/// probe reads besides KVM_RUN's return after an access (whether the guest took an abort, the stage-2 leaf).
/// </summary>
public interface IReplayMappings
{
    /// <summary>The mmap line of a special kind (MAP_SHARED|MAP_FIXED at its uaddr): 0 or the errno.</summary>
    Errno Map(MmapOp op);

    /// <summary>
    /// After an access line's KVM_RUN: whether KVM injected an abort into the guest instead of completing the access,
    /// and the stage-2 leaf at <paramref name="gpa"/> (<see cref="ModelReplayMappings.FormatLeaf"/>'s format).
    /// </summary>
    (bool Aborted, string? Leaf) AfterAccess(ulong gpa);
}
