using System.Text;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>What uname(2) says about this machine.</summary>
/// <param name="SysName">utsname.sysname, "Linux".</param>
/// <param name="Release">utsname.release, the kernel release (e.g. "6.18.0").</param>
/// <param name="Version">utsname.version, the build string.</param>
/// <param name="Machine">utsname.machine, the architecture as the kernel names it ("x86_64", "aarch64").</param>
public sealed record LinuxHostInfo(string SysName, string Release, string Version, string Machine)
{
    /// <summary>The KVM architecture for <see cref="Machine"/>, or null when S2Lab does not model it.</summary>
    public KvmArch? Arch => ArchOf(Machine);

    /// <summary>The page size of this host (getpagesize).</summary>
    public static int PageSize => LibC.GetPageSize();

    /// <summary>Maps a uname machine string to a <see cref="KvmArch"/>; null for anything else.</summary>
    public static KvmArch? ArchOf(string machine) => machine switch
    {
        "x86_64" => KvmArch.X86_64,
        "aarch64" or "arm64" or "aarch64_be" => KvmArch.Arm64,
        _ => null,
    };

    /// <summary>Calls uname(2). Only Linux hosts have one; elsewhere this fails with ENOSYS.</summary>
    public static KvmResult<LinuxHostInfo> Read()
    {
        if (!OperatingSystem.IsLinux())
            return Errno.ENOSYS;
        // struct utsname on Linux: six char[65] fields (sysname, nodename, release, version, machine, domainname).
        const int Field = 65;
        var buf = new byte[Field * 6];
        unsafe
        {
            fixed (byte* p = buf)
            {
                if (LibC.Uname(p) != 0)
                    return LinuxErrno.Last();
            }
        }
        string At(int i)
        {
            var f = buf.AsSpan(i * Field, Field);
            var n = f.IndexOf((byte)0);
            return Encoding.UTF8.GetString(n < 0 ? f : f[..n]);
        }
        return KvmResult<LinuxHostInfo>.Ok(new LinuxHostInfo(At(0), At(2), At(3), At(4)));
    }
}
