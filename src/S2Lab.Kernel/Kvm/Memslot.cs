using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// A memslot (struct kvm_memory_slot): guest frames [BaseGfn, BaseGfn + NPages) backed by the VMM's user range
/// starting at UserspaceAddr, or by a guest_memfd range. Immutable apart from its dirty bitmap; an update replaces it.
/// </summary>
public sealed class Memslot
{
    internal Memslot(int asId, int id, ulong baseGfn, ulong npages, KvmMemFlags flags, ulong userspaceAddr,
        GuestMemfdFile? gmem, ulong gmemPgoff, bool gmemOnly)
    {
        AsId = asId;
        Id = id;
        BaseGfn = baseGfn;
        NPages = npages;
        Flags = flags;
        UserspaceAddr = userspaceAddr;
        GuestMemfd = gmem;
        GuestMemfdPgoff = gmemPgoff;
        GmemOnly = gmemOnly;
    }

    /// <summary>Address-space id (bits 16-31 of the uAPI slot field).</summary>
    public int AsId { get; }

    /// <summary>Slot id (bits 0-15).</summary>
    public int Id { get; }

    public ulong BaseGfn { get; }

    public ulong NPages { get; }

    /// <summary>One past the last gfn.</summary>
    public ulong EndGfn => BaseGfn + NPages;

    public KvmMemFlags Flags { get; }

    public ulong UserspaceAddr { get; }

    /// <summary>The bound guest_memfd, for KVM_MEM_GUEST_MEMFD slots.</summary>
    public GuestMemfdFile? GuestMemfd { get; }

    /// <summary>The bound file offset in pages.</summary>
    public ulong GuestMemfdPgoff { get; }

    /// <summary>KVM_MEMSLOT_GMEM_ONLY (6.18): the guest_memfd was created mmap-able; faults are served from it.</summary>
    public bool GmemOnly { get; }

    /// <summary>The dirty bitmap (one bit per page) when LOG_DIRTY_PAGES is set.</summary>
    public ulong[]? DirtyBitmap { get; internal set; }

    public bool IsReadOnly => (Flags & KvmMemFlags.READONLY) != 0;

    /// <summary>memslot_is_logging(): a dirty bitmap and not read-only.</summary>
    public bool IsLogging => DirtyBitmap is not null && !IsReadOnly;

    public ulong GuestPhysAddr => BaseGfn << PAGE_SHIFT;

    public ulong Size => NPages << PAGE_SHIFT;

    public bool ContainsGfn(ulong gfn) => gfn - BaseGfn < NPages;

    /// <summary>__gfn_to_hva_memslot().</summary>
    public ulong GfnToHva(ulong gfn) => UserspaceAddr + ((gfn - BaseGfn) << PAGE_SHIFT);

    /// <summary>True if the slot's host range intersects [start, end).</summary>
    public bool HvaIntersects(ulong start, ulong end) => UserspaceAddr < end && start < UserspaceAddr + Size;

    /// <summary>mark_page_dirty_in_slot().</summary>
    internal void MarkDirty(ulong gfn)
    {
        if (DirtyBitmap is { } b)
        {
            var i = gfn - BaseGfn;
            b[i >> 6] |= 1UL << (int)(i & 63);
        }
    }

    /// <summary>The uAPI slot field: as_id &lt;&lt; 16 | id.</summary>
    public uint SlotField => ((uint)AsId << 16) | (uint)Id;

    public override string ToString() =>
        $"slot {(AsId != 0 ? $"{AsId}:" : "")}{Id} gpa [{GuestPhysAddr:x}-{GuestPhysAddr + Size:x}) hva {UserspaceAddr:x} flags {Flags}";
}
