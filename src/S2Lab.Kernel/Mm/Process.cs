namespace S2Lab.Kernel.Mm;

/// <summary>A user process on the host (e.g. a VMM): a pid, an address space and a file-descriptor table.</summary>
public sealed class Process
{
    private readonly Dictionary<int, object> _files = [];
    private int _nextFd = 3;

    internal Process(Host host, int pid, string name)
    {
        Host = host;
        Pid = pid;
        Name = name;
        Mm = new MmStruct(host.Memory);
    }

    public Host Host { get; }

    public int Pid { get; }

    public string Name { get; }

    /// <summary>The address space.</summary>
    public MmStruct Mm { get; }

    /// <summary>Installs a file and returns its new descriptor (the lowest free one from 3).</summary>
    public int InstallFd(object file)
    {
        var fd = _nextFd;
        while (_files.ContainsKey(fd))
            fd++;
        _files[fd] = file;
        _nextFd = fd + 1;
        return fd;
    }

    /// <summary>fget(): the file behind <paramref name="fd"/>, or null if it is not open.</summary>
    public object? GetFile(int fd) => _files.GetValueOrDefault(fd);

    /// <summary>close(2): false if the descriptor was not open.</summary>
    public bool Close(int fd)
    {
        if (!_files.Remove(fd))
            return false;
        if (fd < _nextFd)
            _nextFd = fd;
        return true;
    }

    public override string ToString() => $"{Name}[{Pid}]";
}
