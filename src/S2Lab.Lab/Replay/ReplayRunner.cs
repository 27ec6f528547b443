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

    /// <summary>Executes <paramref name="ops"/> in order.</summary>
    public static IReadOnlyList<ReplayStep> Run(IKvmSystem kvm, IEnumerable<ReplayOp> ops)
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
                switch (op)
                {
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
                steps.Add(new ReplayStep(op, result));
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
