using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Runner;

/// <summary>How lab results and reports write values as words: one place for each format.</summary>
public static class LabText
{
    /// <summary>
    /// A call's result in reports, expect fields and JSON: "ok" for success, else the kernel's errno name as
    /// <see cref="ErrnoText.Format"/> writes it (EINVAL, ..., ERRNO_n for a number without a name).
    /// </summary>
    public static string Errno(Errno error) => error == Kernel.Kvm.Uapi.Errno.None ? "ok" : ErrnoText.Format(error);

    /// <summary>The inverse of <see cref="Errno(Kernel.Kvm.Uapi.Errno)"/>; false for text that is neither.</summary>
    public static bool TryParseErrno(string text, out Errno error)
    {
        if (text == "ok")
        {
            error = Kernel.Kvm.Uapi.Errno.None;
            return true;
        }

        return ErrnoText.TryParse(text, out error) && error != Kernel.Kvm.Uapi.Errno.None;
    }
}
