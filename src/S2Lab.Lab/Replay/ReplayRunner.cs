using S2Lab.Kernel.Kvm.Uapi;

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
    /// Executes <paramref name="ops"/> in order. mmap, munmap, vcpu and access lines need <paramref name="machine"/>
    /// (the VMM's address space and a vCPU); without one they fail with ENOSYS.
    /// </summary>
    public static IReadOnlyList<ReplayStep> Run(IKvmSystem kvm, IEnumerable<ReplayOp> ops, IReplayMachine? machine = null)
    {
        var steps = new List<ReplayStep>();
        var vms = new List<IKvmVm>();
        IKvmVm? newest = null;
        var newestFailed = false;
        var gmems = new List<int?>();
        try
        {
            foreach (var op in ops)
            {
                Errno result;
                long? value = null;
                string? exit = null, leaf = null;
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
                        result = machine is null ? Errno.ENOSYS : vmUsable ? machine.EnableCap(newest!, e.Cap) : Errno.EBADF;
                        break;
                    case MmapOp m:
                        result = machine?.Mmap(m) ?? Errno.ENOSYS;
                        break;
                    case MunmapOp u:
                        result = machine?.Munmap(u) ?? Errno.ENOSYS;
                        break;
                    case VcpuOp v:
                        result = machine is null ? Errno.ENOSYS : vmUsable ? machine.CreateVcpu(newest!, v) : Errno.EBADF;
                        break;
                    case AccessOp a:
                        if (machine is null)
                        {
                            result = Errno.ENOSYS;
                            break;
                        }
                        if (!vmUsable)
                        {
                            result = Errno.EBADF;
                            break;
                        }
                        (result, exit, leaf) = machine.Access(newest!, a);
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
                steps.Add(new ReplayStep(op, result, value, exit, leaf));
            }
        }
        finally
        {
            foreach (var vm in vms)
                vm.Dispose();
        }
        return steps;
    }
}

/// <summary>
/// What a replay needs besides /dev/kvm: the VMM's address space (mmap kinds, munmap) and a vCPU that performs guest
/// accesses. The model implements it (<see cref="ModelReplayMachine"/>); the real arm64 kernel is driven by the
/// oracle probe (oracle/arm64), which records the same answers.
/// </summary>
public interface IReplayMachine
{
    /// <summary>The mmap line: 0 or the errno of mmap/mprotect.</summary>
    Errno Mmap(MmapOp op);

    /// <summary>munmap(2).</summary>
    Errno Munmap(MunmapOp op);

    /// <summary>KVM_ENABLE_CAP(<paramref name="cap"/>) on <paramref name="vm"/>.</summary>
    Errno EnableCap(IKvmVm vm, uint cap);

    /// <summary>Guest code page, its memslot and vCPU 0 of <paramref name="vm"/>: 0 or the first errno.</summary>
    Errno CreateVcpu(IKvmVm vm, VcpuOp op);

    /// <summary>
    /// One guest access on <paramref name="vm"/>'s vCPU: the errno of KVM_RUN (EBADF without a vCPU), the exit
    /// (done, mmio, abort; null when KVM_RUN failed) and the stage-2 leaf at the address afterwards.
    /// </summary>
    (Errno Result, string? Exit, string? Leaf) Access(IKvmVm vm, AccessOp op);
}
