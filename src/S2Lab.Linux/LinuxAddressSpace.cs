using System.Numerics;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IHostAddressSpace"/> of this process on a real Linux host: mmap, munmap, mprotect and mincore as
/// system calls, and the VMM's loads and stores through process_vm_readv/writev on itself, which fail with EFAULT
/// (where nothing is mapped or the protection forbids it) instead of raising SIGSEGV. It does not offer
/// <see cref="ISparseAddressSpace"/>: real userspace cannot know where data is without reading it.
/// </summary>
public sealed class LinuxAddressSpace : IHostAddressSpace
{
    private static readonly ulong PageSize = (ulong)LibC.GetPageSize();

    /// <summary>
    /// mmap(NULL, size, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE). <paramref name="name"/> is for the model's
    /// reports only (a real VMM could set it with PR_SET_VMA_ANON_NAME; this backend does not).
    /// </summary>
    public KvmResult<Hva> MapAnonymous(ulong size, Prot prot, string name) =>
        Map(size, prot, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE);

    /// <summary>mmap(at, size, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_NORESERVE).</summary>
    public KvmResult<Hva> MapAnonymousFixed(Hva at, ulong size, Prot prot, string name)
    {
        if (size == 0)
            return Errno.EINVAL;
        var p = LibC.Mmap((nint)at.Value, (nuint)size, (int)prot, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_FIXED | LibC.MAP_NORESERVE, -1, 0);
        return p == LibC.MapFailed ? LinuxErrno.Last() : KvmResult<Hva>.Ok(new Hva((ulong)p));
    }

    /// <summary>mmap with MAP_HUGETLB|MAP_HUGE_&lt;log2 size&gt;: EINVAL for a size that is not a power of two; ENOMEM where the pool has too few pages.</summary>
    public KvmResult<Hva> MapHugetlb(ulong size, ulong hugePageSize, Prot prot, string name)
    {
        if (hugePageSize == 0 || !BitOperations.IsPow2(hugePageSize))
            return Errno.EINVAL;
        var log2 = BitOperations.Log2(hugePageSize);
        return Map(size, prot, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_HUGETLB | (log2 << LibC.MAP_HUGE_SHIFT));
    }

    /// <summary>ENODEV: this backend opens no vfio device (<see cref="LinuxVfioHost"/>), so it has none to map.</summary>
    public KvmResult<Hva> MapDeviceRegion(VfioDevice device, in VfioRegionInfo region, Prot prot) => Errno.ENODEV;

    /// <inheritdoc/>
    public KvmResult<Hva> MapFileFixed(string path, Hva at, ulong size, Prot prot)
    {
        if (size == 0)
            return Errno.EINVAL;
        var fd = LibC.Open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
            return LinuxErrno.Last();
        try
        {
            var p = LibC.Mmap((nint)at.Value, (nuint)size, (int)prot, LibC.MAP_SHARED | LibC.MAP_FIXED, fd, 0);
            return p == LibC.MapFailed ? LinuxErrno.Last() : KvmResult<Hva>.Ok(new Hva((ulong)p));
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    /// <inheritdoc/>
    public Errno Unmap(Hva start, ulong size) =>
        LibC.Munmap((nint)start.Value, (nuint)size) == 0 ? Errno.None : LinuxErrno.Last();

    /// <inheritdoc/>
    public Errno Protect(Hva start, ulong size, Prot prot) =>
        LibC.Mprotect((nint)start.Value, (nuint)size, (int)prot) == 0 ? Errno.None : LinuxErrno.Last();

    /// <summary>mincore(2). EFAULT (before the call) when <paramref name="vector"/> has fewer bytes than the range has pages.</summary>
    public unsafe Errno Residency(Hva start, ulong size, Span<byte> vector)
    {
        if (size > ulong.MaxValue - PageSize)
            return Errno.ENOMEM;
        var pages = (size + PageSize - 1) / PageSize;
        if ((ulong)vector.Length < pages)
            return Errno.EFAULT; // the kernel would write past the caller's vector
        fixed (byte* v = vector)
            return LibC.Mincore((nint)start.Value, (nuint)size, v) == 0 ? Errno.None : LinuxErrno.Last();
    }

    /// <inheritdoc/>
    public unsafe Errno Read(Hva address, Span<byte> destination)
    {
        fixed (byte* d = destination)
            return Transfer(address, d, destination.Length, write: false);
    }

    /// <inheritdoc/>
    public unsafe Errno Write(Hva address, ReadOnlySpan<byte> source)
    {
        fixed (byte* s = source)
            return Transfer(address, s, source.Length, write: true);
    }

    private static unsafe Errno Transfer(Hva address, byte* buffer, int length, bool write)
    {
        var pid = LibC.GetPid();
        var done = 0;
        while (done < length)
        {
            var local = new LibC.IoVec { Base = (nint)(buffer + done), Length = (nuint)(length - done) };
            var remote = new LibC.IoVec { Base = (nint)(address.Value + (ulong)done), Length = (nuint)(length - done) };
            var n = write
                ? LibC.ProcessVmWritev(pid, &local, 1, &remote, 1, 0)
                : LibC.ProcessVmReadv(pid, &local, 1, &remote, 1, 0);
            if (n < 0)
                return LinuxErrno.Last();
            if (n == 0)
                return Errno.EFAULT; // a partial transfer stops at the first page it cannot access
            done += (int)n;
        }

        return Errno.None;
    }

    private static KvmResult<Hva> Map(ulong size, Prot prot, int flags)
    {
        if (size == 0)
            return Errno.EINVAL; // mmap(2): a zero length is EINVAL
        var p = LibC.Mmap(0, (nuint)size, (int)prot, flags, -1, 0);
        return p == LibC.MapFailed ? LinuxErrno.Last() : KvmResult<Hva>.Ok(new Hva((ulong)p));
    }
}
