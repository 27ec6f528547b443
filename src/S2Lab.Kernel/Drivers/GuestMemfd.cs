using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>
/// A guest_memfd file (KVM_CREATE_GUEST_MEMFD): RAM pages owned by one VM, allocated on first use, bound to memslots
/// by file range; with GUEST_MEMFD_FLAG_MMAP it can also be mmap()ed by the VMM.
/// </summary>
public sealed class GuestMemfdFile
{
    private readonly Dictionary<ulong, ulong> _pages = [];
    private readonly List<(ulong Start, ulong End, object Slot)> _bindings = [];
    private readonly PhysicalMemory _memory;

    internal GuestMemfdFile(object owner, PhysicalMemory memory, ulong size, GuestMemfdFlags flags)
    {
        Owner = owner;
        _memory = memory;
        Size = size;
        Flags = flags;
    }

    /// <summary>The VM that created the file.</summary>
    public object Owner { get; }

    public ulong Size { get; }

    public GuestMemfdFlags Flags { get; }

    /// <summary>GUEST_MEMFD_FLAG_MMAP.</summary>
    public bool Mmapable => (Flags & GuestMemfdFlags.MMAP) != 0;

    /// <summary>The pfn of file page <paramref name="pgoff"/>, allocating it (kvm_gmem_get_pfn); null past EOF or when RAM is exhausted.</summary>
    public ulong? GetPfn(ulong pgoff)
    {
        if (pgoff >= Size >> PAGE_SHIFT)
            return null;
        if (_pages.TryGetValue(pgoff, out var pfn))
            return pfn;
        if (_memory.AllocFolio(0) is not { } p)
            return null;
        _pages[pgoff] = p;
        return p;
    }

    /// <summary>True if a page range [start, end) (in pages) intersects an existing binding.</summary>
    internal bool IsBound(ulong start, ulong end) => _bindings.Any(b => b.Start < end && start < b.End);

    internal void Bind(ulong start, ulong end, object slot) => _bindings.Add((start, end, slot));

    internal void Unbind(object slot) => _bindings.RemoveAll(b => ReferenceEquals(b.Slot, slot));

    /// <summary>
    /// mmap of the file (GUEST_MEMFD_FLAG_MMAP, 6.18): a shared MT_NORMAL VMA over the file's pages. ENODEV when the
    /// file was not created mmap-able, EINVAL for a misaligned or out-of-range request.
    /// </summary>
    public KvmResult<Vma> Mmap(Process process, ulong offset = 0, ulong? length = null, ulong? fixedAddress = null)
    {
        if (!Mmapable)
            return Errno.ENODEV;
        var len = length ?? Size - offset;
        if (!IsAligned(offset, PAGE_SIZE) || offset >= Size || len == 0 || len > Size - offset)
            return Errno.EINVAL;
        var flags = VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD |
                    VmFlags.VM_MAYWRITE | VmFlags.VM_DONTDUMP;
        return process.Mm.InsertVma(len, flags, PgProt.Default, offset >> PAGE_SHIFT, new Backing(this), "guest_memfd",
            fixedAddress, fixedAddress is null && len >= PMD_SIZE ? PMD_SIZE : PAGE_SIZE);
    }

    private sealed class Backing(GuestMemfdFile file) : IVmaBacking
    {
        public string Kind => "guest_memfd";

        public HostPte? Fault(Vma vma, ulong hva, bool write) =>
            file.GetPfn(vma.PgOff + ((hva - vma.Start) >> PAGE_SHIFT)) is { } pfn
                ? new HostPte(pfn, PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0)
                : null;

        public HostPte? Lookup(Vma vma, ulong hva) =>
            file._pages.TryGetValue(vma.PgOff + ((hva - vma.Start) >> PAGE_SHIFT), out var pfn)
                ? new HostPte(pfn, PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0)
                : null;

        public void Release(Vma vma, ulong start, ulong end)
        {
            // The pages belong to the file, not to the mapping.
        }
    }
}
