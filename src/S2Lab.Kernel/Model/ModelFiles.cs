using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Model;

/// <summary>
/// The device files of a model host a VMM may open and mmap (<see cref="IHostAddressSpace.MapFileFixed"/>): each path
/// with its driver's mmap handler. Model-only, like <see cref="ModelVfioHost"/>: whoever builds the host (the Lab, a
/// test) installs the drivers; the VMM sees only the path.
/// </summary>
public sealed class ModelFiles
{
    /// <summary>A driver's mmap: the process, the fixed address, the length and the protection; the VMA or the errno.</summary>
    public delegate KvmResult<Vma> MmapHandler(Process process, ulong address, ulong length, Prot prot);

    private readonly Dictionary<string, MmapHandler> _files = new(StringComparer.Ordinal);

    /// <summary>Creates <paramref name="path"/> with <paramref name="mmap"/> as its driver's mmap (replacing any earlier one).</summary>
    public ModelFiles Add(string path, MmapHandler mmap)
    {
        _files[path] = mmap;
        return this;
    }

    /// <summary>The driver's mmap of <paramref name="path"/>, or false (open fails with ENOENT).</summary>
    public bool TryGet(string path, out MmapHandler mmap) => _files.TryGetValue(path, out mmap!);
}
