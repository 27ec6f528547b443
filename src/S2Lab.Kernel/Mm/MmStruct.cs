using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Mm;

/// <summary>Why an MMU notifier is called (enum mmu_notifier_event, the subset the model raises).</summary>
public enum MmuNotifyEvent
{
    /// <summary>munmap or a MAP_FIXED replacement.</summary>
    Unmap,

    /// <summary>mprotect changed the protection of the range (MMU_NOTIFY_PROTECTION_VMA).</summary>
    ProtectionVma,

    /// <summary>A driver zapped its mappings (unmap_mapping_range, e.g. a vfio BAR disabled).</summary>
    Clear,
}

/// <summary>An MMU notifier subscriber (KVM registers one per VM on the VMM's mm).</summary>
public interface IMmuNotifier
{
    /// <summary>invalidate_range_start: every secondary mapping of user addresses [start, end) must go before this returns.</summary>
    void InvalidateRangeStart(MmStruct mm, ulong start, ulong end, MmuNotifyEvent reason);
}

/// <summary>
/// A process address space (mm_struct): a sorted set of non-overlapping VMAs, mmap/munmap/mprotect with VMA
/// splitting, user page access, and MMU notifiers.
/// </summary>
public sealed class MmStruct
{
    private readonly List<Vma> _vmas = [];
    private readonly List<IMmuNotifier> _notifiers = [];
    private ulong _mmapBase;

    /// <param name="taskSize">TASK_SIZE: user addresses are below it (1 &lt;&lt; 48 for arm64 with 48-bit VA).</param>
    public MmStruct(PhysicalMemory memory, ulong taskSize = 1UL << 48)
    {
        Memory = memory;
        TaskSize = taskSize;
        _mmapBase = taskSize - (1UL << 40);
    }

    /// <summary>Host physical memory the pages live in.</summary>
    public PhysicalMemory Memory { get; }

    /// <summary>TASK_SIZE.</summary>
    public ulong TaskSize { get; }

    /// <summary>The VMAs, sorted by address.</summary>
    public IReadOnlyList<Vma> Vmas => _vmas;

    /// <summary>Bumped whenever a VMA changes (mmap, munmap, mprotect); lets callers cache lookups.</summary>
    public ulong Generation { get; private set; }

    public void RegisterNotifier(IMmuNotifier notifier) => _notifiers.Add(notifier);

    public void UnregisterNotifier(IMmuNotifier notifier) => _notifiers.Remove(notifier);

    /// <summary>vma_lookup(): the VMA containing <paramref name="hva"/>, or null.</summary>
    public Vma? FindVma(ulong hva)
    {
        int lo = 0, hi = _vmas.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            var v = _vmas[mid];
            if (hva < v.Start)
                hi = mid - 1;
            else if (hva >= v.End)
                lo = mid + 1;
            else
                return v;
        }
        return null;
    }

    /// <summary>The VMAs intersecting [start, end), in address order (holes are skipped).</summary>
    public IEnumerable<Vma> Intersecting(ulong start, ulong end)
    {
        foreach (var v in _vmas.ToArray())
            if (v.Start < end && start < v.End)
                yield return v;
    }

    /// <summary>
    /// Inserts a mapping of <paramref name="length"/> bytes (what a driver's mmap handler ends up doing). With
    /// <paramref name="fixedAddress"/> the range is first unmapped (MAP_FIXED); otherwise a free range aligned to
    /// <paramref name="alignment"/> is picked top-down. EINVAL for a bad length/address, ENOMEM if no room.
    /// </summary>
    public KvmResult<Vma> InsertVma(ulong length, VmFlags flags, PgProt prot, ulong? pgoff, IVmaBacking backing, string name,
        ulong? fixedAddress = null, ulong alignment = PAGE_SIZE)
    {
        if (length == 0 || length > TaskSize)
            return Errno.EINVAL;
        length = AlignUp(length, PAGE_SIZE);
        if (alignment < PAGE_SIZE || (alignment & (alignment - 1)) != 0)
            return Errno.EINVAL;
        ulong start;
        if (fixedAddress is { } fa)
        {
            if (!IsAligned(fa, PAGE_SIZE) || !IsAligned(fa, alignment) || fa + length > TaskSize || fa + length < fa)
                return Errno.EINVAL;
            start = fa;
            if (!CanSplitAt(start, start + length))
                return Errno.EINVAL;
            Unmap(start, start + length, MmuNotifyEvent.Unmap);
        }
        else
        {
            if (FindFree(length, alignment) is not { } s)
                return Errno.ENOMEM;
            start = s;
        }
        var vma = new Vma(start, start + length, flags, prot, pgoff ?? start >> PAGE_SHIFT, backing, name);
        Insert(vma);
        return KvmResult<Vma>.Ok(vma);
    }

    private ulong? FindFree(ulong length, ulong alignment)
    {
        // Top-down below _mmapBase, like the default arm64 layout.
        var top = _mmapBase;
        for (var i = _vmas.Count - 1; i >= -1; i--)
        {
            var gapEnd = top;
            var gapStart = i >= 0 ? _vmas[i].End : PUD_SIZE;
            if (i >= 0 && _vmas[i].Start >= top)
                continue;
            if (gapEnd > gapStart && gapEnd - gapStart >= length)
            {
                var s = AlignDown(gapEnd - length, alignment);
                if (s >= gapStart)
                    return s;
            }
            if (i >= 0)
                top = Math.Min(top, _vmas[i].Start);
        }
        return null;
    }

    private void Insert(Vma vma)
    {
        var idx = _vmas.FindIndex(v => v.Start > vma.Start);
        if (idx < 0)
            _vmas.Add(vma);
        else
            _vmas.Insert(idx, vma);
        Generation++;
    }

    /// <summary>munmap(2): EINVAL for a misaligned address or a zero/overflowing length; unmapping holes is fine.</summary>
    public Errno Munmap(ulong addr, ulong length)
    {
        if (!IsAligned(addr, PAGE_SIZE) || length == 0)
            return Errno.EINVAL;
        length = AlignUp(length, PAGE_SIZE);
        if (length == 0 || addr + length < addr || addr + length > TaskSize)
            return Errno.EINVAL; // PAGE_ALIGN(len) wrapping to 0 is EINVAL too
        if (!CanSplitAt(addr, addr + length))
            return Errno.EINVAL;
        Unmap(addr, addr + length, MmuNotifyEvent.Unmap);
        return Errno.None;
    }

    /// <summary>
    /// vm_ops->may_split: a VMA cut at <paramref name="start"/> or <paramref name="end"/> must allow it (hugetlb VMAs
    /// split only at huge-page boundaries, else the call fails with EINVAL).
    /// </summary>
    private bool CanSplitAt(ulong start, ulong end)
    {
        foreach (var v in Intersecting(start, end))
        {
            var granule = v.Backing is Drivers.HugetlbBacking h ? h.HugePageSize : PageSizes.PAGE_SIZE;
            if ((start > v.Start && start < v.End && !IsAligned(start, granule)) ||
                (end > v.Start && end < v.End && !IsAligned(end, granule)))
                return false;
        }
        return true;
    }

    private void Unmap(ulong start, ulong end, MmuNotifyEvent reason)
    {
        var hit = Intersecting(start, end).ToList();
        if (hit.Count == 0)
            return;
        Notify(start, end, reason);
        foreach (var v in hit)
        {
            _vmas.Remove(v);
            var cutStart = Math.Max(start, v.Start);
            var cutEnd = Math.Min(end, v.End);
            v.Backing.Release(v, cutStart, cutEnd);
            if (v.Start < cutStart)
                Insert(v.Slice(v.Start, cutStart));
            if (cutEnd < v.End)
                Insert(v.Slice(cutEnd, v.End));
        }
        Generation++;
    }

    /// <summary>
    /// mprotect(2): changes VM_READ/WRITE/EXEC over [addr, addr+length), splitting VMAs at the edges. EINVAL for a
    /// misaligned address; ENOMEM if part of the range is not mapped. As do_mprotect_pkey walks the VMAs in order, a
    /// hole at <paramref name="addr"/> changes nothing, but a hole later in the range is found only after the VMAs
    /// before it have been changed: they keep the new protection and the call still fails with ENOMEM (the
    /// differential test LinuxAddressSpaceTests sees a real kernel do this). EACCES when asking for write on a shared
    /// mapping that cannot be written (no VM_MAYWRITE).
    /// </summary>
    public Errno Mprotect(ulong addr, ulong length, Prot prot)
    {
        if (!IsAligned(addr, PAGE_SIZE))
            return Errno.EINVAL;
        if (length == 0)
            return Errno.None;
        length = AlignUp(length, PAGE_SIZE);
        var requestedEnd = addr + length;
        if (requestedEnd <= addr)
            return Errno.ENOMEM; // mprotect: end <= start after PAGE_ALIGN
        var hit = new List<Vma>();
        var cursor = addr;
        foreach (var v in Intersecting(addr, requestedEnd))
        {
            if (v.Start > cursor)
                break; // a hole: the VMAs before it are changed, then ENOMEM
            hit.Add(v);
            cursor = v.End;
        }
        if (hit.Count == 0)
            return Errno.ENOMEM;
        var end = Math.Min(requestedEnd, cursor);
        var hole = end < requestedEnd;
        if (!CanSplitAt(addr, end))
            return Errno.EINVAL;
        var newBits = VmFlagsExtensions.FromProt(prot);
        foreach (var v in hit)
        {
            if ((newBits & VmFlags.VM_WRITE) != 0 && (v.Flags & VmFlags.VM_MAYWRITE) == 0)
                return Errno.EACCES;
            if ((newBits & VmFlags.VM_EXEC) != 0 && (v.Flags & VmFlags.VM_MAYEXEC) == 0)
                return Errno.EACCES;
        }
        Notify(addr, end, MmuNotifyEvent.ProtectionVma);
        foreach (var v in hit)
        {
            _vmas.Remove(v);
            var s = Math.Max(addr, v.Start);
            var e = Math.Min(end, v.End);
            if (v.Start < s)
                Insert(v.Slice(v.Start, s));
            var mid = v.Slice(s, e);
            Insert(mid with { Flags = (mid.Flags & ~(VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_EXEC)) | newBits });
            if (e < v.End)
                Insert(v.Slice(e, v.End));
        }
        Generation++;
        return hole ? Errno.ENOMEM : Errno.None;
    }

    /// <summary>
    /// zap_page_range/unmap_mapping_range as a driver does it: the VMAs stay, the MMU notifiers fire for the range
    /// and the pages are dropped (to be faulted in again).
    /// </summary>
    public void Zap(ulong start, ulong end)
    {
        Notify(start, end, MmuNotifyEvent.Clear);
        foreach (var v in Intersecting(start, end))
            v.Backing.Release(v, Math.Max(start, v.Start), Math.Min(end, v.End));
    }

    private void Notify(ulong start, ulong end, MmuNotifyEvent reason)
    {
        foreach (var n in _notifiers.ToArray())
            n.InvalidateRangeStart(this, start, end, reason);
    }

    /// <summary>
    /// mincore(2): for each page of [addr, addr+length), bit 0 of <paramref name="vec"/>[i] is set when the page is
    /// resident: a populated anonymous/hugetlb/guest_memfd page, or a page a VM_MIXEDMAP driver provides. Never-touched
    /// anonymous memory reads 0, and so does every page of a VM_PFNMAP VMA: the page walk treats it as a hole
    /// (walk_page_test) and the device file has no page cache. EINVAL for a misaligned <paramref name="addr"/>; ENOMEM
    /// when part of the range is not mapped or it exceeds TASK_SIZE (access_ok); EFAULT when <paramref name="vec"/> has
    /// fewer bytes than pages. As in Linux, the pages before an unmapped hole are filled in before ENOMEM is returned.
    /// </summary>
    public Errno Mincore(ulong addr, ulong length, Span<byte> vec)
    {
        if (!IsAligned(addr, PAGE_SIZE))
            return Errno.EINVAL;
        if (addr >= TaskSize || length > TaskSize - addr)
            return Errno.ENOMEM; // !access_ok()
        if (length == 0)
            return Errno.None;
        var pages = AlignUp(length, PAGE_SIZE) >> PAGE_SHIFT;
        if ((ulong)vec.Length < pages)
            return Errno.EFAULT;
        for (ulong i = 0; i < pages;)
        {
            var hva = addr + (i << PAGE_SHIFT);
            if (FindVma(hva) is not { } vma)
                return Errno.ENOMEM;
            bool hole = (vma.Flags & VmFlags.VM_PFNMAP) != 0;
            if (!hole && vma.Backing is IBulkResidency bulk)
            {
                var n = (int)Math.Min(pages - i, (vma.End - hva) >> PAGE_SHIFT);
                bulk.Residency(vma, hva, vec.Slice((int)i, n));
                i += (ulong)n;
                continue;
            }
            for (; i < pages && hva < vma.End; i++, hva += PAGE_SIZE)
                vec[(int)i] = hole || vma.Backing.Lookup(vma, hva) is null ? (byte)0 : (byte)1;
        }

        return Errno.None;
    }

    /// <summary>
    /// get_user_pages() for one address: the pte behind <paramref name="hva"/>, faulting it in. EFAULT when there is
    /// no VMA, the VMA forbids the access, or the driver has no page there.
    /// </summary>
    public KvmResult<HostPte> FaultIn(ulong hva, bool write)
    {
        var vma = FindVma(hva);
        if (vma is null)
            return Errno.EFAULT;
        return FaultIn(vma, hva, write);
    }

    /// <summary>get_user_pages() within a VMA the caller already looked up.</summary>
    public static KvmResult<HostPte> FaultIn(Vma vma, ulong hva, bool write)
    {
        var need = write ? VmFlags.VM_WRITE : VmFlags.VM_READ;
        if ((vma.Flags & need) == 0)
            return Errno.EFAULT;
        return vma.Backing.Fault(vma, hva, write) is { } pte ? KvmResult<HostPte>.Ok(pte) : Errno.EFAULT;
    }

    /// <summary>
    /// A model call, not a syscall: what <see cref="Read"/> of [<paramref name="hva"/>, +<paramref name="length"/>) would
    /// return, without copying it. It fails exactly where Read would (EFAULT: no VMA, no VM_READ, no page behind an
    /// address; pages are faulted in as Read does) and otherwise lists, ascending, the offsets from
    /// <paramref name="hva"/> of the pages whose physical page holds data (<see cref="PhysicalMemory.PagesWithDataIn"/>);
    /// every other page would read as zeros. EINVAL if <paramref name="hva"/> is not page aligned.
    /// </summary>
    public Errno PagesWithData(ulong hva, ulong length, List<ulong> offsets)
    {
        if (!IsAligned(hva, PAGE_SIZE))
            return Errno.EINVAL;
        var end = hva + length;
        if (end < hva)
            return Errno.EFAULT;
        var cur = hva;
        while (cur < end)
        {
            if (FindVma(cur) is not { } vma || (vma.Flags & VmFlags.VM_READ) == 0)
                return Errno.EFAULT;
            var segEnd = Math.Min(end, vma.End);
            if (vma.Backing is LinearPfnBacking)
            {
                // remap_pfn_range: contiguous pfns, always present; ask the memory which of them hold data.
                var pa = vma.LinearPa(cur);
                foreach (var pfn in Memory.PagesWithDataIn(pa, segEnd - cur))
                    offsets.Add(cur - hva + ((pfn << PAGE_SHIFT) - pa));
            }
            else
            {
                for (var a = cur; a < segEnd; a += PAGE_SIZE)
                {
                    if (vma.Backing.Fault(vma, a, write: false) is not { } pte)
                        return Errno.EFAULT;
                    if (Memory.HasData(pte.Pfn))
                        offsets.Add(a - hva);
                }
            }

            cur = segEnd;
        }

        return Errno.None;
    }

    /// <summary>
    /// The attributes of the process's own mapping <paramref name="vma"/> (its pgprot, decoded from the host's
    /// MAIR_EL1): a user access goes through the caches as that mapping says (issue 12), Normal WB for ordinary memory.
    /// </summary>
    private static MemoryAttributes AttributesOf(Vma vma) =>
        Mair.Decode(vma.PageProt.MairByte, AttributeFeatures.None).Attributes;

    private MemoryAttributes AttributesAt(ulong hva) =>
        FindVma(hva) is { } vma ? AttributesOf(vma) : MemoryAttributes.NormalWriteBack;

    /// <summary>copy_from_user: reads user memory (faulting pages in). EFAULT if any byte is not readable.</summary>
    public Errno Read(ulong hva, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var r = FaultIn(hva, write: false);
            if (!r.IsOk)
                return r.Error;
            var off = (int)(hva & (PAGE_SIZE - 1));
            var n = Math.Min(destination.Length, (int)PAGE_SIZE - off);
            Memory.Read((r.Value.Pfn << PAGE_SHIFT) + (ulong)off, destination[..n], AttributesAt(hva));
            destination = destination[n..];
            hva += (ulong)n;
        }
        return Errno.None;
    }

    /// <summary>copy_to_user: writes user memory (faulting pages in). EFAULT if any byte is not writable.</summary>
    public Errno Write(ulong hva, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            var r = FaultIn(hva, write: true);
            if (!r.IsOk)
                return r.Error;
            var off = (int)(hva & (PAGE_SIZE - 1));
            var n = Math.Min(source.Length, (int)PAGE_SIZE - off);
            Memory.Write((r.Value.Pfn << PAGE_SHIFT) + (ulong)off, source[..n], AttributesAt(hva));
            source = source[n..];
            hva += (ulong)n;
        }
        return Errno.None;
    }
}
