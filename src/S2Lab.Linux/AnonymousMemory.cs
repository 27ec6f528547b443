using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// A private anonymous mapping (mmap MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, read-write): the usual backing of a
/// RAM memslot. <see cref="Address"/> is what goes into userspace_addr. Dispose unmaps it.
/// </summary>
public sealed class AnonymousMemory : IDisposable
{
    private nint _address;

    private AnonymousMemory(nint address, ulong size)
    {
        _address = address;
        Size = size;
    }

    /// <summary>The start of the mapping (page-aligned).</summary>
    public ulong Address
    {
        get
        {
            ObjectDisposedException.ThrowIf(_address == 0, this);
            return (ulong)_address;
        }
    }

    /// <summary>The length of the mapping in bytes.</summary>
    public ulong Size { get; }

    /// <summary>Maps <paramref name="size"/> bytes (rounded up to the page size by the kernel). Fails with mmap's errno.</summary>
    public static KvmResult<AnonymousMemory> Map(ulong size)
    {
        if (size == 0)
            return Errno.EINVAL; // mmap(2): a zero length is EINVAL
        var p = LibC.Mmap(0, (nuint)size, LibC.PROT_READ | LibC.PROT_WRITE,
            LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0);
        if (p == LibC.MapFailed)
            return LinuxErrno.Last();
        return KvmResult<AnonymousMemory>.Ok(new AnonymousMemory(p, size));
    }

    /// <summary>The mapping as bytes (only for mappings up to 2 GiB).</summary>
    public unsafe Span<byte> AsSpan() => new((void*)Address, checked((int)Size));

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_address != 0)
        {
            LibC.Munmap(_address, (nuint)Size);
            _address = 0;
        }
        GC.SuppressFinalize(this);
    }

    ~AnonymousMemory()
    {
        if (_address != 0)
            LibC.Munmap(_address, (nuint)Size);
    }
}
