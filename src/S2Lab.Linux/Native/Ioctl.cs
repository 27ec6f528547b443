namespace S2Lab.Linux.Native;

/// <summary>
/// The generic ioctl request encoding of include/uapi/asm-generic/ioctl.h, used by x86_64 and arm64:
/// bits 0-7 number, 8-15 type, 16-29 argument size, 30-31 direction (1 = write to the kernel, 2 = read from it).
/// </summary>
public static class Ioctl
{
    private const int NrBits = 8, TypeBits = 8, SizeBits = 14;
    private const int NrShift = 0, TypeShift = NrShift + NrBits, SizeShift = TypeShift + TypeBits, DirShift = SizeShift + SizeBits;

    public const uint DirNone = 0, DirWrite = 1, DirRead = 2;

    /// <summary>_IOC(dir, type, nr, size).</summary>
    public static nuint Ioc(uint dir, uint type, uint nr, int size)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(type, 0xffu);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(nr, 0xffu);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(size, 1 << SizeBits);
        return (nuint)((dir << DirShift) | (type << TypeShift) | (nr << NrShift) | ((uint)size << SizeShift));
    }

    /// <summary>_IO(type, nr): no argument structure.</summary>
    public static nuint IO(uint type, uint nr) => Ioc(DirNone, type, nr, 0);

    /// <summary>_IOR(type, nr, T): the kernel writes a T to userspace.</summary>
    public static unsafe nuint IOR<T>(uint type, uint nr) where T : unmanaged => Ioc(DirRead, type, nr, sizeof(T));

    /// <summary>_IOW(type, nr, T): userspace passes a T to the kernel.</summary>
    public static unsafe nuint IOW<T>(uint type, uint nr) where T : unmanaged => Ioc(DirWrite, type, nr, sizeof(T));

    /// <summary>_IOWR(type, nr, T): both directions.</summary>
    public static unsafe nuint IOWR<T>(uint type, uint nr) where T : unmanaged => Ioc(DirWrite | DirRead, type, nr, sizeof(T));
}
