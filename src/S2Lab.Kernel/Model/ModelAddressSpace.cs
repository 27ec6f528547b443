using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Model;

/// <summary>
/// <see cref="IHostAddressSpace"/> over a model <see cref="Process"/>: each call is the system call's model
/// (<see cref="MmStruct"/>, <see cref="AnonymousMemory"/>, <see cref="Hugetlbfs"/>, the vfio drivers of
/// <paramref name="vfio"/>). It also offers <see cref="ISparseAddressSpace"/>, which real userspace has not.
/// </summary>
public sealed class ModelAddressSpace(Process process, ModelVfioHost? vfio = null, ModelFiles? files = null) : IHostAddressSpace, ISparseAddressSpace
{
    private readonly Dictionary<ulong, Vma> _mapped = [];

    /// <summary>The VMM process whose address space this is.</summary>
    public Process Process { get; } = process;

    /// <summary>Its mm (the Lab reads VMA facts from it; the VMM cannot).</summary>
    public MmStruct Mm => Process.Mm;

    /// <summary>
    /// The VMA the latest mmap through this address space created at <paramref name="start"/>, kept after munmap so
    /// that reports can describe a mapping the VMM has already torn down (the Lab's view; the VMM cannot see VMAs).
    /// </summary>
    public Vma? MappingAt(Hva start) => _mapped.GetValueOrDefault(start.Value);

    /// <summary>
    /// Whether the host backs anonymous memory with transparent huge pages where it can (sysfs
    /// transparent_hugepage/enabled). Off for a kernel built without CONFIG_TRANSPARENT_HUGEPAGE, as the arm64
    /// oracle's is.
    /// </summary>
    public bool TransparentHugepages { get; init; } = true;

    /// <inheritdoc/>
    public KvmResult<Hva> MapAnonymous(ulong size, Prot prot, string name) =>
        Start(AnonymousMemory.Mmap(Process, size, prot, thp: TransparentHugepages, name: name));

    /// <inheritdoc/>
    public KvmResult<Hva> MapAnonymousFixed(Hva at, ulong size, Prot prot, string name) =>
        Start(AnonymousMemory.Mmap(Process, size, prot, at.Value, thp: TransparentHugepages, name: name));

    /// <inheritdoc/>
    public KvmResult<Hva> MapHugetlb(ulong size, ulong hugePageSize, Prot prot, string name) =>
        Start(Hugetlbfs.Mmap(Process, size, hugePageSize, prot, name: name, anonymous: true));

    /// <summary>
    /// mmap of a vfio region: the driver's mmap (read-write, as vfio maps it), then mprotect to <paramref name="prot"/>
    /// when that asks for less. ENODEV for a device this host did not open; EINVAL for a region it lacks or one
    /// without VFIO_REGION_INFO_FLAG_MMAP (vfio_pci_core_mmap).
    /// </summary>
    public KvmResult<Hva> MapDeviceRegion(VfioDevice device, in VfioRegionInfo region, Prot prot)
    {
        if (vfio is null || !vfio.TryGetMmap(device.Name, region.Index, out var info, out var mmap))
            return Errno.ENODEV;
        if ((info.Flags & VfioRegionFlags.Mmap) == 0)
            return Errno.EINVAL;
        var mapped = mmap(Process);
        if (!mapped.IsOk)
            return mapped.Error;
        var vma = mapped.Value;
        const Prot rw = Prot.PROT_READ | Prot.PROT_WRITE;
        if (prot != rw && Mm.Mprotect(vma.Start, vma.Size, prot) is var e and not Errno.None)
        {
            Mm.Munmap(vma.Start, vma.Size);
            return e;
        }

        return Start(mapped);
    }

    /// <summary>
    /// mmap(MAP_SHARED|MAP_FIXED) of a device file of <see cref="ModelFiles"/>: ENOENT for a path the host lacks,
    /// EINVAL for an unaligned address or an empty length (do_mmap), else whatever the file's driver returns.
    /// </summary>
    public KvmResult<Hva> MapFileFixed(string path, Hva at, ulong size, Prot prot)
    {
        if (files is null || !files.TryGet(path, out var mmap))
            return Errno.ENOENT;
        if (size == 0 || !IsAligned(at.Value, PAGE_SIZE))
            return Errno.EINVAL;
        return Start(mmap(Process, at.Value, AlignUp(size, PAGE_SIZE), prot));
    }

    /// <inheritdoc/>
    public Errno Unmap(Hva start, ulong size) => Mm.Munmap(start.Value, size);

    /// <inheritdoc/>
    public Errno Protect(Hva start, ulong size, Prot prot) => Mm.Mprotect(start.Value, size, prot);

    /// <inheritdoc/>
    public Errno Residency(Hva start, ulong size, Span<byte> vector) => Mm.Mincore(start.Value, size, vector);

    /// <inheritdoc/>
    public Errno Read(Hva address, Span<byte> destination) => Mm.Read(address.Value, destination);

    /// <inheritdoc/>
    public Errno Write(Hva address, ReadOnlySpan<byte> source) => Mm.Write(address.Value, source);

    /// <summary><see cref="MmStruct.PagesWithData"/>: the model knows which physical pages ever held data.</summary>
    public Errno PagesThatMayHoldData(Hva start, ulong size, List<ulong> pageOffsets) =>
        IsAligned(start.Value, PAGE_SIZE) ? Mm.PagesWithData(start.Value, size, pageOffsets) : Errno.EINVAL;

    private KvmResult<Hva> Start(KvmResult<Vma> mapped)
    {
        if (!mapped.IsOk)
            return mapped.Error;
        _mapped[mapped.Value.Start] = mapped.Value;
        return KvmResult<Hva>.Ok(new Hva(mapped.Value.Start));
    }
}
