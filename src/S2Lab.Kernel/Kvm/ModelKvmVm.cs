using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>The kind of memslot change (enum kvm_mr_change).</summary>
public enum MemslotChange
{
    Create,
    Delete,
    Move,
    FlagsOnly,
}

/// <summary>
/// A model VM: memslots (generic rules 19-34 in the kernel's order, then the arch prepare rules), guest_memfd, dirty
/// logging, an MMU notifier on the VMM's mm, the stage-2 table and the fault handler (rules 8-17), and vCPUs.
/// </summary>
public sealed partial class ModelKvmVm : IKvmVm, IMmuNotifier
{
    private readonly MemslotSet[] _slots;
    private readonly Dictionary<uint, ModelKvmVcpu> _vcpus = [];
    private bool _disposed;

    internal ModelKvmVm(ModelKvmSystem kvm, int ipaBits, int number)
    {
        Kvm = kvm;
        Number = number;
        IpaBits = ipaBits;
        _slots = new MemslotSet[kvm.Profile.AddressSpaces];
        for (var i = 0; i < _slots.Length; i++)
            _slots[i] = new MemslotSet(kvm.Profile.MemSlotsNum);
        // The stage-2 model is arm64's; an x86-profile VM (memslot differential tests) gets a table of the host's
        // largest IPA size, since x86's GPA width (up to 52 bits) has no arm64 VTCR with this CPU.
        Stage2 = new Stage2Mmu(kvm.Host, Math.Min(ipaBits, kvm.Host.Cpu.IpaLimitBits)) { Owner = this };
        kvm.Process.Mm.RegisterNotifier(this);
    }

    public ModelKvmSystem Kvm { get; }

    /// <summary>The VM's number on its /dev/kvm, from 1 in creation order (the <c>Vm</c> of its kernel events).</summary>
    public int Number { get; }

    public Host Host => Kvm.Host;

    public KvmProfile Profile => Kvm.Profile;

    /// <summary>The VMM's address space (kvm->mm).</summary>
    public MmStruct Mm => Kvm.Process.Mm;

    /// <summary>The VM's IPA size in bits (from the CreateVm type).</summary>
    public int IpaBits { get; }

    /// <summary>The stage-2 MMU (table, FWB setting).</summary>
    public Stage2Mmu Stage2 { get; }

    /// <summary>kvm_has_mte(): the VM enabled KVM_CAP_ARM_MTE (rule 6's MTE check).</summary>
    public bool HasMte { get; private set; }

    /// <summary>The memslots of an address space.</summary>
    public MemslotSet Memslots(int asId = 0) => _slots[asId];

    /// <summary>All slots of every address space.</summary>
    public IEnumerable<Memslot> AllMemslots => _slots.SelectMany(s => s.InGfnOrder());

    public IReadOnlyCollection<ModelKvmVcpu> Vcpus => _vcpus.Values;

    /// <summary>
    /// KVM_ENABLE_CAP(KVM_CAP_ARM_MTE): EINVAL without MTE on the host or once vCPUs exist; 7.x also refuses while a
    /// guest_memfd slot exists. Other memslots do not matter (arm.c, 6.12 and 7.3).
    /// </summary>
    public Errno EnableMte()
    {
        if (Profile.Arch != KvmArch.Arm64 || !Host.Cpu.HasMte || _vcpus.Count > 0 || AllMemslots.Any(s => s.GuestMemfd is not null))
            return Errno.EINVAL;
        HasMte = true;
        return Errno.None;
    }

    public KvmResult<long> CheckExtension(uint cap) => Capabilities.Check(Kvm, this, cap);

    /// <summary>
    /// KVM_ENABLE_CAP on the VM fd. The model implements KVM_CAP_ARM_MTE (<see cref="EnableMte"/>); any other
    /// capability is EINVAL, as kvm_vm_ioctl_enable_cap() answers for one it does not handle.
    /// </summary>
    public Errno EnableCap(uint cap, ulong arg0 = 0) => cap == KvmCap.ARM_MTE && arg0 == 0 ? EnableMte() : Errno.EINVAL;

    /// <summary>KVM_SET_USER_MEMORY_REGION: rule 19 (v1 takes LOG_DIRTY_PAGES and READONLY only), then as v2.</summary>
    public Errno SetUserMemoryRegion(in KvmUserspaceMemoryRegion region)
    {
        if (_disposed)
            return Errno.EBADF;
        var v2 = KvmUserspaceMemoryRegion2.FromV1(region);
        if ((region.Flags & ~(uint)(KvmMemFlags.LOG_DIRTY_PAGES | KvmMemFlags.READONLY)) != 0)
        {
            // Rule 19.
            if (Kvm.Observer is { } o)
                o.On(Decided(v2, null, Fail(Errno.EINVAL, 19, "KVM_SET_USER_MEMORY_REGION takes only LOG_DIRTY_PAGES and READONLY")));
            return Errno.EINVAL;
        }
        return SetMemoryRegion(v2, out _);
    }

    public Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region) =>
        _disposed ? Errno.EBADF : SetMemoryRegion(region, out _);

    /// <summary>KVM_SET_USER_MEMORY_REGION2 with the reason of the outcome (rule number and text) for explanations.</summary>
    public Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region, out DesignVerdict verdict)
    {
        if (_disposed)
        {
            verdict = DesignVerdict.Fail(Errno.EBADF, 0, "the VM fd is closed");
            return Errno.EBADF;
        }
        return SetMemoryRegion(region, out verdict);
    }

    private Errno SetMemoryRegion(in KvmUserspaceMemoryRegion2 mem, out DesignVerdict verdict)
    {
        _change = null;
        var r = CheckAndApply(mem);
        verdict = r;
        if (Kvm.Observer is { } o)
            o.On(Decided(mem, _change, r));
        return r.Error;
    }

    /// <summary>The change <see cref="CheckAndApply"/> decided on (null until known), for <see cref="MemslotDecided"/>.</summary>
    private MemslotChange? _change;

    private MemslotDecided Decided(in KvmUserspaceMemoryRegion2 mem, MemslotChange? change, DesignVerdict v) =>
        new(Kvm.NextSeq(), Host.Name, Number, mem.Slot, change, (KvmMemFlags)mem.Flags, mem.GuestPhysAddr, mem.MemorySize,
            mem.UserspaceAddr, v.Error, v.Rule, v.Reason);

    private static DesignVerdict Fail(Errno e, int rule, string why) => DesignVerdict.Fail(e, rule, why);

    /// <summary>kvm_vm_ioctl_set_memory_region + kvm_set_memory_region + kvm_set_memslot, in the kernel's order.</summary>
    private DesignVerdict CheckAndApply(in KvmUserspaceMemoryRegion2 mem)
    {
        var p = Profile;
        var flags = (KvmMemFlags)mem.Flags;
        var id = (int)(mem.Slot & 0xFFFF);
        var asId = (int)(mem.Slot >> 16);

        // Rule 20: only the low 16 bits are compared here.
        if (id >= p.UserMemSlots)
            return Fail(Errno.EINVAL, 20, $"slot id {id} >= KVM_USER_MEM_SLOTS ({p.UserMemSlots})");

        // Rule 21: check_memory_region_flags().
        var gmemOk = Capabilities.GuestMemfdSupported(Kvm);
        var valid = KvmMemFlags.LOG_DIRTY_PAGES | Host.Design.ExtraMemslotFlags(Host.Cpu);
        if (gmemOk)
            valid |= KvmMemFlags.GUEST_MEMFD;
        if (p.ReadonlyMem && (flags & KvmMemFlags.GUEST_MEMFD) == 0)
            valid |= KvmMemFlags.READONLY;
        if ((flags & KvmMemFlags.GUEST_MEMFD) != 0)
            valid &= ~KvmMemFlags.LOG_DIRTY_PAGES;
        if ((flags & ~valid) != 0)
            return Fail(Errno.EINVAL, 21, $"flags 0x{(uint)flags:x} outside the valid set 0x{(uint)valid:x}");

        // Rules 22-25.
        if (!IsAligned(mem.MemorySize, PAGE_SIZE))
            return Fail(Errno.EINVAL, 22, "memory_size is not a multiple of PAGE_SIZE");
        if (!IsAligned(mem.GuestPhysAddr, PAGE_SIZE))
            return Fail(Errno.EINVAL, 23, "guest_phys_addr is not page aligned");
        if (!IsAligned(mem.UserspaceAddr, PAGE_SIZE) || !AccessOk(mem.UserspaceAddr, mem.MemorySize))
            return Fail(Errno.EINVAL, 24, "userspace_addr is not page aligned or the range is not a valid user range");
        if ((flags & KvmMemFlags.GUEST_MEMFD) != 0 &&
            (!IsAligned(mem.GuestMemfdOffset, PAGE_SIZE) || mem.GuestMemfdOffset + mem.MemorySize < mem.GuestMemfdOffset))
            return Fail(Errno.EINVAL, 25, "guest_memfd_offset is not page aligned or offset + size overflows");

        // Rule 26.
        if (asId >= p.AddressSpaces || id >= p.MemSlotsNum)
            return Fail(Errno.EINVAL, 26, $"address space {asId} >= {p.AddressSpaces} or id {id} >= KVM_MEM_SLOTS_NUM");
        // Rules 27-28.
        if (mem.GuestPhysAddr + mem.MemorySize < mem.GuestPhysAddr)
            return Fail(Errno.EINVAL, 27, "guest_phys_addr + memory_size overflows");
        var npages = mem.MemorySize >> PAGE_SHIFT;
        if (id < p.UserMemSlots && npages > p.MaxNrPages)
            return Fail(Errno.EINVAL, 28, "more than KVM_MEM_MAX_NR_PAGES pages");

        var slots = _slots[asId];
        var old = slots.ById(id);
        var baseGfn = mem.GuestPhysAddr >> PAGE_SHIFT;
        MemslotChange change;
        if (mem.MemorySize == 0)
        {
            // Rule 29.
            if (old is null || old.NPages == 0)
                return Fail(Errno.EINVAL, 29, $"delete of slot {id}, which does not exist");
            change = MemslotChange.Delete;
        }
        else if (old is null)
        {
            // Rule 30.
            if (slots.TotalPages + npages < slots.TotalPages)
                return Fail(Errno.EINVAL, 30, "the total page count would overflow");
            change = MemslotChange.Create;
        }
        else
        {
            // Rule 31.
            if ((flags & KvmMemFlags.GUEST_MEMFD) != 0)
                return Fail(Errno.EINVAL, 31, "a guest_memfd slot cannot be modified, only deleted");
            // The kernel also refuses toggling GUEST_MEMFD: a guest_memfd slot can only be deleted.
            if (mem.UserspaceAddr != old.UserspaceAddr || npages != old.NPages ||
                ((flags ^ old.Flags) & (KvmMemFlags.READONLY | KvmMemFlags.GUEST_MEMFD)) != 0)
                return Fail(Errno.EINVAL, 31, "changing userspace_addr, the size, READONLY or GUEST_MEMFD of an existing slot");
            if (baseGfn != old.BaseGfn)
                change = MemslotChange.Move;
            else if (flags != old.Flags)
                change = MemslotChange.FlagsOnly;
            else
                return DesignVerdict.Ok(31, "nothing changes");
        }

        _change = change;

        // Rule 32.
        if (change is MemslotChange.Create or MemslotChange.Move && slots.Overlaps(baseGfn, baseGfn + npages, id))
            return Fail(Errno.EEXIST, 32, "the range overlaps another slot in the same address space");

        // Rule 33: guest_memfd bind, for CREATE only (a modify with GUEST_MEMFD was refused above; a delete never
        // looks at the descriptor).
        GuestMemfdFile? gmem = null;
        var gmemPgoff = 0UL;
        if (change == MemslotChange.Create && (flags & KvmMemFlags.GUEST_MEMFD) != 0)
        {
            var file = Kvm.Process.GetFile((int)mem.GuestMemfd);
            if (file is null)
                return Fail(Errno.EBADF, 33, $"guest_memfd {mem.GuestMemfd} is not an open fd");
            if (file is not GuestMemfdFile g || !ReferenceEquals(g.Owner, this))
                return Fail(Errno.EINVAL, 33, "the fd is not a guest_memfd of this VM");
            gmemPgoff = mem.GuestMemfdOffset >> PAGE_SHIFT;
            // kvm_gmem_bind compares loff_t values: a negative offset fails, and offset + size wraps as a signed sum.
            if ((long)mem.GuestMemfdOffset < 0 || (long)(mem.GuestMemfdOffset + mem.MemorySize) > (long)g.Size)
                return Fail(Errno.EINVAL, 33, "guest_memfd_offset is negative or offset + size is beyond the file");
            if (g.IsBound(gmemPgoff, gmemPgoff + npages))
                return Fail(p.GmemBindOverlapErrno, 33, "the guest_memfd range is already bound to another slot");
            gmem = g;
        }

        var created = change switch
        {
            MemslotChange.Delete => null,
            MemslotChange.FlagsOnly or MemslotChange.Move => new Memslot(asId, id, baseGfn, npages, flags, old!.UserspaceAddr,
                old.GuestMemfd, old.GuestMemfdPgoff, old.GmemOnly),
            _ => new Memslot(asId, id, baseGfn, npages, flags, mem.UserspaceAddr, gmem, gmemPgoff,
                gmem is not null && gmem.Mmapable && Host.Design.BaseVersion >= new KernelVersion(6, 18)),
        };
        return SetMemslot(slots, old, created, change);
    }

    /// <summary>access_ok(uaddr, size) against the profile's user address limit.</summary>
    private bool AccessOk(ulong addr, ulong size)
    {
        var limit = Profile.UserAddressLimit;
        return size <= limit && addr <= limit - size;
    }

    /// <summary>kvm_set_memslot(): invalidate (zap) for DELETE/MOVE, prepare (bitmap, arch rules), commit; rule 34.</summary>
    private DesignVerdict SetMemslot(MemslotSet slots, Memslot? old, Memslot? @new, MemslotChange change)
    {
        // Rule 34: DELETE and MOVE zap the old range first (kvm_arch_flush_shadow_memslot).
        if (change is MemslotChange.Delete or MemslotChange.Move)
            Stage2.UnmapRange(old!.GuestPhysAddr, old.Size);

        if (@new is not null)
        {
            // kvm_prepare_memory_region: the dirty bitmap.
            if ((@new.Flags & KvmMemFlags.LOG_DIRTY_PAGES) == 0)
                @new.DirtyBitmap = null;
            else if (old?.DirtyBitmap is { } kept)
                @new.DirtyBitmap = kept;
            else
            {
                @new.DirtyBitmap = new ulong[(@new.NPages + 63) / 64];
            }
        }

        var prepared = Profile.Arch == KvmArch.Arm64
            ? PrepareArm64(@new, change)
            : PrepareX86(@new, change);
        if (!prepared.IsOk)
            return prepared; // nothing was committed; the old slot stays (its mappings refault)

        // Commit.
        switch (change)
        {
            case MemslotChange.Create:
                slots.Add(@new!);
                if (@new!.GuestMemfd is { } g)
                    g.Bind(@new.GuestMemfdPgoff, @new.GuestMemfdPgoff + @new.NPages, @new);
                break;
            case MemslotChange.Delete:
                slots.Remove(old!);
                old!.GuestMemfd?.Unbind(old);
                break;
            case MemslotChange.Move:
                slots.Remove(old!);
                slots.Add(@new!);
                break;
            case MemslotChange.FlagsOnly:
                slots.Replace(old!, @new!);
                // kvm_arch_commit_memory_region: enabling dirty logging write-protects the slot.
                if (@new!.IsLogging && !old!.IsLogging)
                    Stage2.WriteProtectRange(@new.GuestPhysAddr, @new.Size);
                break;
        }
        return DesignVerdict.Ok(prepared.Rule, $"{change}: {prepared.Reason}");
    }

    /// <summary>kvm_arch_prepare_memory_region() on arm64: rules 4-7, the per-VMA part delegated to the design.</summary>
    private DesignVerdict PrepareArm64(Memslot? @new, MemslotChange change)
    {
        if (change == MemslotChange.Delete)
            return DesignVerdict.Ok(34, "DELETE runs no arch checks");
        var slot = @new!;
        // Rule 4.
        if (slot.BaseGfn + slot.NPages > (1UL << IpaBits) >> PAGE_SHIFT)
            return Fail(Errno.EFAULT, 4, $"the slot ends beyond the VM's {IpaBits}-bit IPA space");
        // Rule 5 (6.18+): a guest_memfd slot must be gmem-only (created with GUEST_MEMFD_FLAG_MMAP).
        if (slot.GuestMemfd is not null && !slot.GmemOnly)
            return Fail(Errno.EINVAL, 5, "guest_memfd slot whose file was not created with GUEST_MEMFD_FLAG_MMAP");
        // Rule 6: every VMA intersecting the host range, in order; holes are fine.
        var last = DesignVerdict.Ok(6, "no VMA objects");
        foreach (var vma in Mm.Intersecting(slot.UserspaceAddr, slot.UserspaceAddr + slot.Size))
        {
            if (HasMte && (vma.Flags & VmFlags.VM_MTE_ALLOWED) == 0)
                return Fail(Errno.EINVAL, 6, $"the VM has MTE and {vma.Name} lacks VM_MTE_ALLOWED");
            if ((vma.Flags & VmFlags.VM_PFNMAP) != 0 && (slot.Flags & KvmMemFlags.LOG_DIRTY_PAGES) != 0)
                return Fail(Errno.EINVAL, 6, $"dirty logging on the VM_PFNMAP VMA {vma.Name}");
            var v = Host.Design.PrepareVma(new PrepareVmaContext(Host.Cpu, vma, slot.Flags));
            if (!v.IsOk)
                return v;
            last = v;
        }
        return last;
    }

    /// <summary>x86's kvm_arch_prepare_memory_region(): CREATE/MOVE beyond kvm_mmu_max_gfn() is EINVAL.</summary>
    private DesignVerdict PrepareX86(Memslot? @new, MemslotChange change)
    {
        if (change is MemslotChange.Create or MemslotChange.Move)
        {
            var maxGfn = (1UL << (Profile.X86MaxGpaBits - PAGE_SHIFT)) - 1;
            if (@new!.BaseGfn + @new.NPages - 1 > maxGfn)
                return Fail(Errno.EINVAL, 0, $"x86: the slot ends beyond max gfn 0x{maxGfn:x} ({Profile.X86MaxGpaBits}-bit GPA)");
        }
        return DesignVerdict.Ok(0, "x86 prepare passes");
    }

    /// <summary>KVM_CREATE_GUEST_MEMFD: size &gt; 0 and page aligned, known flags; EINVAL otherwise or where unsupported.</summary>
    public KvmResult<int> CreateGuestMemfd(ulong size, ulong flags)
    {
        if (_disposed)
            return Errno.EBADF;
        if (!Capabilities.GuestMemfdSupported(Kvm))
            return Errno.EINVAL;
        var supported = (ulong)(GuestMemfdFlags.MMAP | GuestMemfdFlags.INIT_SHARED);
        if ((flags & ~supported) != 0 || size == 0 || !IsAligned(size, PAGE_SIZE) || size > long.MaxValue)
            return Errno.EINVAL;
        var file = new GuestMemfdFile(this, Host.Memory, size, (GuestMemfdFlags)flags);
        return KvmResult<int>.Ok(Kvm.Process.InstallFd(file));
    }

    /// <summary>
    /// KVM_GET_DIRTY_LOG: EINVAL for a bad slot field, ENOENT if the slot is absent or not logging, EFAULT if the
    /// buffer is too small. Copies and clears the bitmap and write-protects the pages that were dirty.
    /// </summary>
    public Errno GetDirtyLog(uint slot, Span<ulong> bitmap)
    {
        if (_disposed)
            return Errno.EBADF;
        var asId = (int)(slot >> 16);
        var id = (int)(slot & 0xFFFF);
        if (asId >= Profile.AddressSpaces || id >= Profile.UserMemSlots)
            return Errno.EINVAL;
        var ms = _slots[asId].ById(id);
        if (ms?.DirtyBitmap is not { } bits)
            return Errno.ENOENT;
        if (bitmap.Length < bits.Length)
            return Errno.EFAULT;
        var flush = false;
        for (var w = 0; w < bits.Length; w++)
        {
            var mask = bits[w];
            bitmap[w] = mask;
            if (mask == 0)
                continue;
            bits[w] = 0;
            // kvm_arch_mmu_enable_log_dirty_pt_masked: write-protect from the first to the last page of the word's
            // mask (the clean pages between are write-protected already); one TLB flush for the slot at the end.
            var first = (ulong)System.Numerics.BitOperations.TrailingZeroCount(mask);
            var last = 63UL - (ulong)System.Numerics.BitOperations.LeadingZeroCount(mask);
            var gfn = ms.BaseGfn + ((ulong)w << 6);
            Stage2.WriteProtectRange((gfn + first) << PAGE_SHIFT, (last - first + 1) << PAGE_SHIFT, flush: false);
            flush = true;
        }
        if (flush)
            Stage2.FlushTlb();
        return Errno.None;
    }

    /// <summary>KVM_CREATE_VCPU: EINVAL for an id at or past the profile's max vCPUs (512 on arm64), EEXIST for a duplicate.</summary>
    public KvmResult<IKvmVcpu> CreateVcpu(uint id)
    {
        if (_disposed)
            return Errno.EBADF;
        if (id >= Profile.MaxVcpus || _vcpus.Count >= Profile.MaxVcpus)
            return Errno.EINVAL;
        if (_vcpus.ContainsKey(id))
            return Errno.EEXIST;
        var vcpu = new ModelKvmVcpu(this, id);
        _vcpus[id] = vcpu;
        return KvmResult<IKvmVcpu>.Ok(vcpu);
    }

    /// <summary>CreateVcpu returning the model type.</summary>
    public KvmResult<ModelKvmVcpu> CreateModelVcpu(uint id)
    {
        var r = CreateVcpu(id);
        return r.IsOk ? KvmResult<ModelKvmVcpu>.Ok((ModelKvmVcpu)r.Value) : r.Error;
    }

    /// <summary>
    /// The MMU notifier (kvm_mmu_notifier_invalidate_range_start): zap the stage-2 mappings of every gfn whose hva is
    /// in [start, end), in every address space, before the mm change completes.
    /// </summary>
    public void InvalidateRangeStart(MmStruct mm, ulong start, ulong end, MmuNotifyEvent reason)
    {
        foreach (var set in _slots)
        {
            foreach (var slot in set.InGfnOrder())
            {
                if (!slot.HvaIntersects(start, end) || slot.GmemOnly)
                    continue;
                var s = Math.Max(start, slot.UserspaceAddr);
                var e = Math.Min(end, slot.UserspaceAddr + slot.Size);
                var gpa = slot.GuestPhysAddr + (AlignDown(s, PAGE_SIZE) - slot.UserspaceAddr);
                Stage2.UnmapRange(gpa, AlignUp(e, PAGE_SIZE) - AlignDown(s, PAGE_SIZE));
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Mm.UnregisterNotifier(this);
        Stage2.UnmapRange(0, 1UL << IpaBits);
        Kvm.Forget(this);
    }
}
