using System.Runtime.InteropServices;

namespace S2Lab.Linux.Native;

/// <summary>The few libc calls the real-KVM backend needs. Every call sets the last P/Invoke error (errno).</summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    public const int O_RDWR = 0x2;
    public const int O_CLOEXEC = 0x80000; // same value on x86_64 and arm64 (asm-generic)

    public const int PROT_NONE = 0x0;
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10; // x86_64 and arm64 agree
    public const int MAP_ANONYMOUS = 0x20; // x86_64 and arm64 agree
    public const int MAP_NORESERVE = 0x4000; // x86_64 and arm64 agree
    public const int MAP_HUGETLB = 0x40000; // x86_64 and arm64 agree
    public const int MAP_HUGE_SHIFT = 26;

    /// <summary>MAP_FAILED, i.e. (void *)-1.</summary>
    public static readonly nint MapFailed = -1;

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    // ioctl(int, unsigned long, ...): the variadic third argument is passed in a register on both
    // x86_64 (SysV) and arm64 Linux (AAPCS64), so a fixed-arity import with a pointer-sized argument is correct there.
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, nuint arg);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    public static partial int Mprotect(nint addr, nuint length, int prot);

    /// <summary>mincore(2): <paramref name="vec"/> must have one byte per page of the range.</summary>
    [LibraryImport(Lib, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(nint addr, nuint length, byte* vec);

    /// <summary>struct iovec.</summary>
    public struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    [LibraryImport(Lib, EntryPoint = "getpid")]
    public static partial int GetPid();

    /// <summary>process_vm_readv(2): copies from another (here: this) process's memory; EFAULT instead of SIGSEGV on a bad address.</summary>
    [LibraryImport(Lib, EntryPoint = "process_vm_readv", SetLastError = true)]
    public static partial nint ProcessVmReadv(int pid, IoVec* local, nuint liovcnt, IoVec* remote, nuint riovcnt, nuint flags);

    /// <summary>process_vm_writev(2): honours the mapping's protection (no FOLL_FORCE), unlike /proc/self/mem.</summary>
    [LibraryImport(Lib, EntryPoint = "process_vm_writev", SetLastError = true)]
    public static partial nint ProcessVmWritev(int pid, IoVec* local, nuint liovcnt, IoVec* remote, nuint riovcnt, nuint flags);

    [LibraryImport(Lib, EntryPoint = "uname", SetLastError = true)]
    public static partial int Uname(byte* buf);

    [LibraryImport(Lib, EntryPoint = "getpagesize")]
    public static partial int GetPageSize();

    /// <summary>errno of the last call above.</summary>
    public static int LastErrno => Marshal.GetLastPInvokeError();
}
