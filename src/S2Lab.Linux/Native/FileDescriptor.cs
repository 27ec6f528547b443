using System.Runtime.InteropServices;

namespace S2Lab.Linux.Native;

/// <summary>An owned Linux file descriptor, closed exactly once (on Dispose or by the finalizer).</summary>
internal sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor(int fd) : base(invalidHandleValue: -1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    /// <summary>The descriptor number. Valid only while this handle is not disposed.</summary>
    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return (int)handle;
        }
    }

    protected override bool ReleaseHandle() => LibC.Close((int)handle) == 0;
}
