using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux;

/// <summary>Maps the errno numbers libc reports to <see cref="Errno"/>.</summary>
public static class LinuxErrno
{
    /// <summary>
    /// The <see cref="Errno"/> for a positive errno number. The enum uses the Linux numbers, so the mapping is the
    /// identity; a number the enum does not name is kept as is (its name prints as the number) rather than thrown on.
    /// A non-positive number (a broken libc contract) maps to EIO, never to success.
    /// </summary>
    public static Errno FromNumber(int errno) => errno > 0 ? (Errno)errno : Errno.EIO;

    /// <summary>Whether <paramref name="error"/> is one of the named members of <see cref="Errno"/>.</summary>
    public static bool IsNamed(Errno error) => Enum.IsDefined(error);

    /// <summary>The errno of the last libc call made by this backend.</summary>
    internal static Errno Last() => FromNumber(Native.LibC.LastErrno);
}
