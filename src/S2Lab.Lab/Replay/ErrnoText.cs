using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>How a call's result is written in replay output and golden files: "0" for success, else the errno name.</summary>
public static class ErrnoText
{
    private const string UnnamedPrefix = "ERRNO_";

    /// <summary>"0", the kernel name (EINVAL, ...), or ERRNO_n for a number <see cref="Errno"/> does not name.</summary>
    public static string Format(Errno error) =>
        error == Errno.None ? "0" : Enum.IsDefined(error) ? error.ToString() : UnnamedPrefix + ((int)error).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The inverse of <see cref="Format"/>; false for text that is neither.</summary>
    public static bool TryParse(string text, out Errno error)
    {
        error = Errno.None;
        if (text == "0")
            return true;
        if (text.StartsWith(UnnamedPrefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(UnnamedPrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n > 0)
        {
            error = (Errno)n;
            return true;
        }
        return text.StartsWith('E') && Enum.TryParse(text, ignoreCase: false, out error) && Enum.IsDefined(error) && error != Errno.None;
    }
}
