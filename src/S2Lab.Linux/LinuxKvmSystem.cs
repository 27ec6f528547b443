using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IKvmSystem"/> on the real /dev/kvm. Every answer is the running kernel's: return values of the
/// ioctls as they are, failures as the kernel's errno. Dispose closes the fd; VMs created from it live on until
/// they are disposed themselves (the kernel keeps its own references).
/// </summary>
public sealed class LinuxKvmSystem : IKvmSystem
{
    /// <summary>The usual path of the KVM device.</summary>
    public const string DefaultPath = "/dev/kvm";

    /// <summary>KVM_API_VERSION: what KVM_GET_API_VERSION has answered on every Linux since 2.6.22.</summary>
    public const int ApiVersion = 12;

    private readonly FileDescriptor _fd;

    private LinuxKvmSystem(FileDescriptor fd, string path, LinuxHostInfo host, KvmArch arch)
    {
        _fd = fd;
        Path = path;
        Host = host;
        Arch = arch;
    }

    /// <summary>The device path that was opened.</summary>
    public string Path { get; }

    /// <summary>uname of the machine this KVM runs on.</summary>
    public LinuxHostInfo Host { get; }

    /// <inheritdoc/>
    public KvmArch Arch { get; }

    /// <summary>
    /// Opens the KVM device read-write. Fails with open(2)'s errno (ENOENT when there is no KVM, EACCES without
    /// permission), with EOPNOTSUPP when the machine is not one S2Lab models (uname machine not x86_64/aarch64), and
    /// with ENOTTY when the file opens but is not KVM: KVM_GET_API_VERSION fails (a regular file, /dev/null) or answers
    /// something other than <see cref="ApiVersion"/>.
    /// </summary>
    public static KvmResult<LinuxKvmSystem> Open(string path = DefaultPath)
    {
        var host = LinuxHostInfo.Read();
        if (!host.IsOk)
            return host.Error;
        if (host.Value.Arch is not { } arch)
            return Errno.EOPNOTSUPP;
        var raw = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (raw < 0)
            return LinuxErrno.Last();
        var fd = new FileDescriptor(raw);
        if (LibC.Ioctl(fd.Fd, KvmIoctls.GET_API_VERSION, 0) != ApiVersion)
        {
            fd.Dispose();
            return Errno.ENOTTY;
        }

        return KvmResult<LinuxKvmSystem>.Ok(new LinuxKvmSystem(fd, path, host.Value, arch));
    }

    /// <inheritdoc/>
    public int GetApiVersion()
    {
        var r = LibC.Ioctl(_fd.Fd, KvmIoctls.GET_API_VERSION, 0);
        return r < 0 ? -(int)LinuxErrno.Last() : r;
    }

    /// <inheritdoc/>
    public KvmResult<long> CheckExtension(uint cap) => CheckExtension(_fd, cap);

    /// <summary>KVM_GET_VCPU_MMAP_SIZE: the size of the kvm_run area each vCPU fd is mmapped with.</summary>
    public KvmResult<int> GetVcpuMmapSize()
    {
        var r = LibC.Ioctl(_fd.Fd, KvmIoctls.GET_VCPU_MMAP_SIZE, 0);
        return r < 0 ? LinuxErrno.Last() : KvmResult<int>.Ok(r);
    }

    /// <inheritdoc/>
    public KvmResult<IKvmVm> CreateVm(ulong type = 0)
    {
        var r = CreateLinuxVm(type);
        return r.IsOk ? KvmResult<IKvmVm>.Ok(r.Value) : r.Error;
    }

    /// <summary>KVM_CREATE_VM, typed: the real VM handle.</summary>
    public KvmResult<LinuxKvmVm> CreateLinuxVm(ulong type = 0)
    {
        var mmapSize = GetVcpuMmapSize();
        if (!mmapSize.IsOk)
            return mmapSize.Error;
        var raw = LibC.Ioctl(_fd.Fd, KvmIoctls.CREATE_VM, (nuint)type);
        if (raw < 0)
            return LinuxErrno.Last();
        return KvmResult<LinuxKvmVm>.Ok(new LinuxKvmVm(new FileDescriptor(raw), Arch, mmapSize.Value));
    }

    internal static KvmResult<long> CheckExtension(FileDescriptor fd, uint cap)
    {
        var r = LibC.Ioctl(fd.Fd, KvmIoctls.CHECK_EXTENSION, cap);
        return r < 0 ? LinuxErrno.Last() : KvmResult<long>.Ok(r);
    }

    /// <inheritdoc/>
    public void Dispose() => _fd.Dispose();
}
