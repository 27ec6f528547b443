namespace S2Lab.Kernel.Kvm.Uapi;

/// <summary>Linux errno values (asm-generic/errno-base.h and errno.h), by their kernel names and numbers.</summary>
public enum Errno
{
    /// <summary>Success (no error).</summary>
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    ENOEXEC = 8,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    EINVAL = 22,
    ENOTTY = 25,
    ENOSPC = 28,
    ERANGE = 34,
    ENOSYS = 38,
    EOPNOTSUPP = 95,
}

/// <summary>The result of a call that returns a value or fails with an errno, as an ioctl does.</summary>
public readonly record struct KvmResult<T>
{
    private readonly T? _value;

    private KvmResult(T? value, Errno error)
    {
        _value = value;
        Error = error;
    }

    /// <summary><see cref="Errno.None"/> on success.</summary>
    public Errno Error { get; }

    public bool IsOk => Error == Errno.None;

    /// <summary>The value; throws if the call failed.</summary>
    public T Value => IsOk ? _value! : throw new InvalidOperationException($"the call failed with {Error}");

    public static KvmResult<T> Ok(T value) => new(value, Errno.None);

    public static KvmResult<T> Fail(Errno error) =>
        error == Errno.None ? throw new ArgumentException("a failure needs an errno", nameof(error)) : new(default, error);

    public static implicit operator KvmResult<T>(Errno error) => Fail(error);

    /// <summary>The value (invariant culture), or the errno's name: "1", "EINVAL".</summary>
    public override string ToString() => IsOk ? string.Format(System.Globalization.CultureInfo.InvariantCulture, "{0}", _value) : Error.ToString();
}
