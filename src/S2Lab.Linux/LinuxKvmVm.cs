using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IKvmVm"/> on a real KVM VM fd. The VM owns the guest_memfd descriptors it creates and closes them on
/// Dispose, together with its own fd. vCPUs are disposed by their creator.
/// </summary>
public sealed class LinuxKvmVm : IKvmVm
{
    private readonly FileDescriptor _fd;
    private readonly int _vcpuMmapSize;
    private readonly List<FileDescriptor> _guestMemfds = [];

    // Page counts of the slots this handle created, keyed by the full 32-bit slot (as_id << 16 | id), so that
    // KVM_GET_DIRTY_LOG always gets a buffer as large as the kernel will write (ALIGN(npages, 64) / 8 bytes).
    private readonly Dictionary<uint, ulong> _slotPages = [];

    internal LinuxKvmVm(FileDescriptor fd, KvmArch arch, int vcpuMmapSize)
    {
        _fd = fd;
        Arch = arch;
        _vcpuMmapSize = vcpuMmapSize;
    }

    /// <summary>The architecture of the host kernel.</summary>
    public KvmArch Arch { get; }

    /// <summary>The VM file descriptor (for diagnostics; do not close it).</summary>
    public int Fd => _fd.Fd;

    /// <inheritdoc/>
    public KvmResult<long> CheckExtension(uint cap) => LinuxKvmSystem.CheckExtension(_fd, cap);

    /// <inheritdoc/>
    public unsafe Errno SetUserMemoryRegion(in KvmUserspaceMemoryRegion region)
    {
        var native = new KvmUserspaceMemoryRegionNative
        {
            Slot = region.Slot,
            Flags = region.Flags,
            GuestPhysAddr = region.GuestPhysAddr,
            MemorySize = region.MemorySize,
            UserspaceAddr = region.UserspaceAddr,
        };
        if (LibC.Ioctl(_fd.Fd, KvmIoctls.SET_USER_MEMORY_REGION, &native) < 0)
            return LinuxErrno.Last();
        Track(region.Slot, region.MemorySize);
        return Errno.None;
    }

    /// <inheritdoc/>
    public unsafe Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region)
    {
        var native = new KvmUserspaceMemoryRegion2Native
        {
            Slot = region.Slot,
            Flags = region.Flags,
            GuestPhysAddr = region.GuestPhysAddr,
            MemorySize = region.MemorySize,
            UserspaceAddr = region.UserspaceAddr,
            GuestMemfdOffset = region.GuestMemfdOffset,
            GuestMemfd = region.GuestMemfd,
        };
        if (LibC.Ioctl(_fd.Fd, KvmIoctls.SET_USER_MEMORY_REGION2, &native) < 0)
            return LinuxErrno.Last();
        Track(region.Slot, region.MemorySize);
        return Errno.None;
    }

    private void Track(uint slot, ulong size)
    {
        if (size == 0)
            _slotPages.Remove(slot);
        else
            _slotPages[slot] = size / (ulong)LinuxHostInfo.PageSize;
    }

    /// <inheritdoc/>
    public unsafe Errno EnableCap(uint cap, ulong arg0 = 0)
    {
        var args = new KvmEnableCapNative { Cap = cap };
        args.Args[0] = arg0;
        return LibC.Ioctl(_fd.Fd, KvmIoctls.ENABLE_CAP, &args) < 0 ? LinuxErrno.Last() : Errno.None;
    }

    /// <inheritdoc/>
    public unsafe KvmResult<int> CreateGuestMemfd(ulong size, ulong flags)
    {
        var args = new KvmCreateGuestMemfdNative { Size = size, Flags = flags };
        var raw = LibC.Ioctl(_fd.Fd, KvmIoctls.CREATE_GUEST_MEMFD, &args);
        if (raw < 0)
            return LinuxErrno.Last();
        _guestMemfds.Add(new FileDescriptor(raw));
        return KvmResult<int>.Ok(raw);
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG. The kernel writes ALIGN(npages, 64) / 8 bytes; they go to a buffer of that size and the
    /// first <paramref name="bitmap"/>.Length words are copied out. For a slot this handle did not create, the
    /// kernel gets a null bitmap, so it can only fail (ENOENT for an absent or non-logging slot).
    /// </summary>
    public unsafe Errno GetDirtyLog(uint slot, Span<ulong> bitmap)
    {
        var words = _slotPages.TryGetValue(slot, out var pages) ? checked((int)((pages + 63) / 64)) : 0;
        var buffer = new ulong[words];
        fixed (ulong* p = buffer)
        {
            var log = new KvmDirtyLogNative { Slot = slot, DirtyBitmap = (ulong)p };
            if (LibC.Ioctl(_fd.Fd, KvmIoctls.GET_DIRTY_LOG, &log) < 0)
                return LinuxErrno.Last();
        }
        buffer.AsSpan(0, Math.Min(words, bitmap.Length)).CopyTo(bitmap);
        return Errno.None;
    }

    /// <inheritdoc/>
    public KvmResult<IKvmVcpu> CreateVcpu(uint id)
    {
        var raw = LibC.Ioctl(_fd.Fd, KvmIoctls.CREATE_VCPU, id);
        if (raw < 0)
            return LinuxErrno.Last();
        var fd = new FileDescriptor(raw);
        var run = LibC.Mmap(0, (nuint)_vcpuMmapSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, raw, 0);
        if (run == LibC.MapFailed)
        {
            var e = LinuxErrno.Last();
            fd.Dispose();
            return e;
        }
        return KvmResult<IKvmVcpu>.Ok(new LinuxKvmVcpu(id, fd, run, _vcpuMmapSize, _fd.Fd));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var g in _guestMemfds)
            g.Dispose();
        _guestMemfds.Clear();
        _fd.Dispose();
    }
}
