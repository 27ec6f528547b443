using System.Runtime.InteropServices;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IKvmVcpu"/> on a real vCPU fd, with its kvm_run area mapped. <see cref="Run"/> issues KVM_RUN as is:
/// no registers are set up and, on arm64, no KVM_ARM_VCPU_INIT is done, so there the kernel answers ENOEXEC;
/// on x86_64 the vCPU starts at the reset vector and exits as the kernel decides.
/// </summary>
public sealed class LinuxKvmVcpu : IKvmVcpu
{
    private readonly FileDescriptor _fd;
    private nint _run;
    private readonly int _runSize;

    internal LinuxKvmVcpu(uint id, FileDescriptor fd, nint run, int runSize, int vmFd)
    {
        Id = id;
        VmFd = vmFd;
        _fd = fd;
        _run = run;
        _runSize = runSize;
    }

    /// <inheritdoc/>
    public uint Id { get; }

    /// <summary>The vCPU fd (for register set-up by <see cref="LinuxGuestLoader"/>).</summary>
    internal int Fd => _fd.Fd;

    /// <summary>The fd of the VM the vCPU belongs to (KVM_ARM_PREFERRED_TARGET is a VM ioctl).</summary>
    internal int VmFd { get; }

    /// <summary>The raw exit_reason of the last successful <see cref="Run"/> (KVM_EXIT_*), including ones <see cref="KvmExitReason"/> does not name.</summary>
    public uint LastRawExitReason { get; private set; }

    /// <inheritdoc/>
    public KvmResult<KvmExit> Run()
    {
        ObjectDisposedException.ThrowIf(_run == 0, this);
        if (LibC.Ioctl(_fd.Fd, KvmIoctls.RUN, 0) < 0)
            return LinuxErrno.Last();
        var reason = (uint)Marshal.ReadInt32(_run, KvmRunLayout.ExitReason);
        LastRawExitReason = reason;
        // KvmExitReason members carry the KVM_EXIT_* numbers; an unnamed reason keeps its number.
        var exit = (KvmExitReason)reason;
        if (exit == KvmExitReason.Mmio)
        {
            return KvmResult<KvmExit>.Ok(new KvmExit(exit,
                (ulong)Marshal.ReadInt64(_run, KvmRunLayout.MmioPhysAddr),
                (uint)Marshal.ReadInt32(_run, KvmRunLayout.MmioLen),
                Marshal.ReadByte(_run, KvmRunLayout.MmioIsWrite) != 0));
        }
        return KvmResult<KvmExit>.Ok(new KvmExit(exit));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_run != 0)
        {
            LibC.Munmap(_run, (nuint)_runSize);
            _run = 0;
        }
        _fd.Dispose();
    }
}
