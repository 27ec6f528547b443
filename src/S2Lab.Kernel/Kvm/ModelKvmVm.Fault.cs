using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>How kvm_handle_guest_abort() ended.</summary>
internal enum AbortOutcome
{
    /// <summary>Mapped or permissions relaxed: the guest retries the access.</summary>
    Handled,

    /// <summary>io_mem_abort: KVM_RUN returns KVM_EXIT_MMIO.</summary>
    Mmio,

    /// <summary>An abort was injected into the guest (ENOEXEC, IPA beyond the VM's range).</summary>
    Injected,

    /// <summary>KVM_RUN fails with the errno.</summary>
    Failed,
}

/// <summary>What user_mem_abort() did, before it becomes a <see cref="FaultRecord"/> (only when a caller keeps results).</summary>
internal readonly struct FaultInfo
{
    public required bool IsPermissionFault { get; init; }

    public Errno Error { get; init; }

    public Stage2TypeDecision? Decision { get; init; }

    public ulong MappingSize { get; init; }

    public KvmPgtableProt Prot { get; init; }

    public IReadOnlyList<CacheMaintenance> Cmos { get; init; }

    public FaultRecord ToRecord() => new()
    {
        IsPermissionFault = IsPermissionFault,
        Error = Error,
        Decision = Decision,
        MappingSize = MappingSize,
        Prot = Prot,
        Cmos = Cmos ?? [],
    };
}

/// <summary>
/// Where one fault's decisions go: <see cref="FaultDecided"/> events, carrying the facts known so far, to the
/// observer of the VM's /dev/kvm. <see cref="For"/> returns null when no observer is attached, so a fault nobody
/// observes formats and allocates nothing.
/// </summary>
internal sealed class FaultDecisions
{
    private readonly ModelKvmVm _vm;
    private readonly IKernelObserver _observer;
    private readonly uint _vcpu;
    private readonly ulong _ipa;
    private readonly S2AccessKind _access;

    private FaultDecisions(ModelKvmVm vm, IKernelObserver observer, uint vcpu, ulong ipa, S2AccessKind access)
    {
        _vm = vm;
        _observer = observer;
        _vcpu = vcpu;
        _ipa = ipa;
        _access = access;
    }

    /// <summary>The facts the handler has established so far (VMA, pfn, type, mapping size).</summary>
    public FaultFacts Facts { get; set; } = FaultFacts.None;

    public static FaultDecisions? For(ModelKvmVm vm, uint vcpu, ulong ipa, S2AccessKind access) =>
        vm.Kvm.Observer is { } observer ? new FaultDecisions(vm, observer, vcpu, ipa, access) : null;

    /// <summary>Emits one <see cref="FaultDecided"/>: the stage, the rule that decided it (0 if none) and the reason.</summary>
    public void Step(DecisionStage stage, int rule, string reason) =>
        _observer.On(new FaultDecided(_vm.Kvm.NextSeq(), _vm.Host.Name, _vm.Number, _vcpu, _ipa, _access, stage, rule, reason, Facts));
}

public sealed partial class ModelKvmVm
{
    /// <summary>
    /// kvm_handle_guest_abort(): a stage-2 translation fault (no leaf) or permission fault (<paramref name="existing"/>
    /// lacks the permission) at <paramref name="ipa"/>. Records the fault in <paramref name="r"/> (null on the vCPU's
    /// allocation-free path) and reports each decision as a <see cref="FaultDecided"/> to the observer, if any.
    /// </summary>
    internal AbortOutcome HandleGuestAbort(uint vcpu, ulong ipa, S2AccessKind type, S2Leaf? existing, GuestAccessResult? r, out Errno error)
    {
        var d = FaultDecisions.For(this, vcpu, ipa, type);
        error = Errno.None;
        var isPerm = existing is not null;
        var exec = type == S2AccessKind.Execute;
        var write = type == S2AccessKind.Write;
        if (!isPerm)
        {
            if (ipa >= 1UL << Host.Cpu.IpaLimitBits)
            {
                d?.Step(DecisionStage.Exit, 0, $"IPA {ipa:x} is beyond the host's IPA limit ({Host.Cpu.IpaLimitBits} bits): address size fault injected");
                return AbortOutcome.Injected;
            }
            if (ipa >= 1UL << IpaBits)
            {
                d?.Step(DecisionStage.Exit, 0, $"IPA {ipa:x} is beyond the VM's {IpaBits}-bit IPA space: external abort injected");
                return AbortOutcome.Injected;
            }
        }

        var gfn = ipa >> PAGE_SHIFT;
        var slot = _slots[0].Find(gfn);
        if (r is not null)
            r.Memslot = slot;
        var writable = slot is not null && !slot.IsReadOnly;
        if (slot is null || (write && !writable))
        {
            if (exec)
            {
                d?.Step(DecisionStage.Memslot, 0, slot is null
                    ? $"instruction fetch from IPA {ipa:x} outside every memslot: -ENOEXEC, instruction abort injected"
                    : "instruction fetch fault on a read-only slot: abort injected");
                return AbortOutcome.Injected;
            }
            d?.Step(DecisionStage.Memslot, 0, slot is null
                ? $"IPA {ipa:x} is in no memslot: io_mem_abort, KVM_EXIT_MMIO"
                : $"write to the read-only {slot}: io_mem_abort, KVM_EXIT_MMIO");
            return AbortOutcome.Mmio;
        }
        d?.Step(DecisionStage.Memslot, 0, $"gfn {gfn:x} is in {slot}: the fault is at hva {slot.GfnToHva(gfn):x}{(slot.IsLogging ? ", dirty logging active" : "")}");

        var rec = UserMemAbort(ipa, type, slot, existing, r, d);
        r?.AddFault(rec.ToRecord());
        if (rec.Error == Errno.None)
            return AbortOutcome.Handled;
        if (rec.Error == Errno.ENOEXEC)
        {
            d?.Step(DecisionStage.Exit, 12, "-ENOEXEC: kvm_inject_sea_iabt, the guest takes an instruction abort and the vCPU goes on");
            return AbortOutcome.Injected;
        }
        error = rec.Error;
        d?.Step(DecisionStage.Exit, rec.Decision is { IsOk: false } dec ? dec.Rule : 0, $"user_mem_abort returns -{rec.Error}: KVM_RUN fails with {rec.Error}");
        return AbortOutcome.Failed;
    }

    /// <summary>user_mem_abort(): memslot -> hva -> VMA -> pfn, the design's type, mapping size, permissions, map.</summary>
    private FaultInfo UserMemAbort(ulong faultIpa, S2AccessKind type, Memslot slot, S2Leaf? existing, GuestAccessResult? r, FaultDecisions? d)
    {
        var exec = type == S2AccessKind.Execute;
        var write = type == S2AccessKind.Write;
        var isPerm = existing is not null;
        var logging = slot.IsLogging;

        if (isPerm && !write && !exec)
            return new FaultInfo { IsPermissionFault = true, Error = Errno.EFAULT };

        if (slot.GmemOnly)
            return GmemAbort(faultIpa, exec, slot, r, d);

        var hva = slot.GfnToHva(faultIpa >> PAGE_SHIFT);
        var vma = Mm.FindVma(hva);
        if (r is not null)
            r.Vma = vma;
        if (vma is null)
        {
            d?.Step(DecisionStage.Vma, 0, $"no VMA at hva {hva:x}: -EFAULT");
            return new FaultInfo { IsPermissionFault = isPerm, Error = Errno.EFAULT };
        }
        if (d is not null)
            d.Facts = d.Facts with { Vma = vma.Name, VmaFlags = vma.Flags, VmaPgProt = vma.PageProt.ToString(), VmaCacheable = vma.IsCacheable };
        d?.Step(DecisionStage.Vma, 3, $"{vma.Name}: {vma.Flags}, pgprot {vma.PageProt} ({(vma.IsCacheable ? "cacheable" : "non-cacheable")})");

        // Mapping size (rules 15-17). sizeRule is the rule that set the size so far, the one the MappingSize decision
        // cites (docs/rules.md, section E): 17 for a page forced by dirty logging, 16 where the memslot made KVM step
        // down, 15 where the size is the host's own (the hugetlb page size, the contiguous-hugetlb switch, the host's
        // stage-1 leaf).
        var forcePte = logging;
        int shift;
        int sizeRule;
        if (logging)
        {
            shift = PAGE_SHIFT;
            sizeRule = 17;
        }
        else
        {
            shift = VmaPageShift(vma);
            sizeRule = 15;
        }
        // user_mem_abort's switch: PUD falls back to PMD (rule 16), CONT_PMD maps as PMD and CONT_PTE as forced pages
        // (rule 15), a PMD the memslot cannot hold falls to forced pages (rule 16).
        if (shift == PUD_SHIFT && !SupportsHuge(slot, hva, PUD_SIZE))
            (shift, sizeRule) = (PMD_SHIFT, 16);
        if (shift == CONT_PMD_SHIFT)
            shift = PMD_SHIFT;
        if (shift == PMD_SHIFT && !SupportsHuge(slot, hva, PMD_SIZE))
            (shift, sizeRule) = (CONT_PTE_SHIFT, 16);
        if (shift == CONT_PTE_SHIFT)
        {
            shift = PAGE_SHIFT;
            forcePte = true;
        }
        var size = 1UL << shift;
        var ipa = size > PAGE_SIZE ? AlignDown(faultIpa, size) : faultIpa & ~(PAGE_SIZE - 1);
        var gfn = ipa >> PAGE_SHIFT;

        // __kvm_faultin_pfn.
        var pfnHva = slot.GfnToHva(gfn);
        var pte = MmStruct.FaultIn(vma, pfnHva, write);
        if (!pte.IsOk)
        {
            d?.Step(DecisionStage.Pfn, 0, $"__kvm_faultin_pfn(hva {pfnHva:x}, {(write ? "FOLL_WRITE" : "read")}) fails: -EFAULT");
            return new FaultInfo { IsPermissionFault = isPerm, Error = Errno.EFAULT };
        }
        var pfn = pte.Value.Pfn;
        var writable = pte.Value.Writable && !slot.IsReadOnly;
        var mapMemory = Host.Memory.PfnIsMapMemory(pfn);
        if (d is not null)
            d.Facts = d.Facts with { Pfn = pfn, MapMemory = mapMemory };
        if ((vma.Flags & (VmFlags.VM_IO | VmFlags.VM_PFNMAP)) == 0 && !Host.Memory.PfnHasStructPage(pfn))
        {
            // hva_to_pfn(): GUP cannot take a page without struct page, and only VM_IO|VM_PFNMAP VMAs are walked by
            // hva_to_pfn_remapped(); a VM_MIXEDMAP VMA without VM_IO over such pages fails.
            d?.Step(DecisionStage.Pfn, 0, $"pfn {pfn:x} has no struct page and {vma.Name} is neither VM_IO nor VM_PFNMAP: -EFAULT");
            return new FaultInfo { IsPermissionFault = isPerm, Error = Errno.EFAULT };
        }
        d?.Step(DecisionStage.Pfn, 0, $"pfn {pfn:x} ({(mapMemory ? "kernel map memory" : Host.Memory.RegionOf(pfn << PAGE_SHIFT)?.Name + ", not map memory")}), host {(pte.Value.Writable ? "writable" : "read-only")}");

        // The design picks the type (rules 8-11, 18).
        var decision = Host.Design.DecideStage2Type(new FaultTypeContext(Host.Cpu, vma.Flags, vma.IsCacheable, mapMemory, slot.Flags));
        if (d is not null && decision.IsOk)
            d.Facts = d.Facts with { Type = decision.Type };
        d?.Step(DecisionStage.Design, decision.Rule, $"{Host.Design.Name}: {decision.Reason}");
        if (!decision.IsOk)
            return new FaultInfo { IsPermissionFault = isPerm, Error = decision.Error, Decision = decision };
        var forceNc = decision.ForceNonCacheable;
        var special = vma.Flags.IsPfnmapOrMixed() && !mapMemory;
        if (!special && logging && !write)
            writable = false; // rule 13: with dirty logging only a write fault maps writable

        // Rule 12.
        if (exec && forceNc)
            return new FaultInfo { IsPermissionFault = isPerm, Error = Errno.ENOEXEC, Decision = decision };

        // Rule 15 / transparent_hugepage_adjust: a PAGE_SIZE mapping not forced to PTEs (rule 17) takes the host's
        // stage-1 leaf (PMD at most), non-cacheable ones included (6.12.113+, 7.x: the check is !force_pte /
        // max_map_size), if the memslot can hold the PMD block (rule 16).
        if (size == PAGE_SIZE && !forcePte)
        {
            if (isPerm && existing!.Value.Size > PAGE_SIZE)
            {
                size = existing.Value.Size; // the block an earlier fault took from the host leaf (rule 15)
            }
            else if (SupportsHuge(slot, hva, PMD_SIZE))
            {
                var host = vma.Backing.Lookup(vma, hva);
                if (host is { MappingSize: >= PMD_SIZE })
                {
                    size = PMD_SIZE;
                    ipa = AlignDown(faultIpa, PMD_SIZE);
                    gfn = ipa >> PAGE_SHIFT;
                    pfn &= ~(PMD_SIZE / PAGE_SIZE - 1);
                    if (d is not null)
                        d.Facts = d.Facts with { Pfn = pfn, MappingSize = size };
                    d?.Step(DecisionStage.MappingSize, 15, "transparent_hugepage_adjust: the host maps a THP with a PMD: PMD block");
                }
            }
            else if (d is not null && vma.Backing.Lookup(vma, hva) is { MappingSize: >= PMD_SIZE })
            {
                // The kernel checks the memslot first and never reads the host leaf here; only the cited rule needs
                // it: the host's PMD leaf was refused by the memslot (rule 16), not by the host's own mapping.
                sizeRule = 16;
            }
            if (size > PAGE_SIZE)
                ipa = AlignDown(faultIpa, size);
        }
        if (d is not null)
            d.Facts = d.Facts with { MappingSize = size };
        d?.Step(DecisionStage.MappingSize, sizeRule,
            $"mapping size {Format(size)}{(logging ? " (dirty logging forces PAGE_SIZE)" : "")}");

        if (HasMte && !isPerm && !forceNc && (vma.Flags & VmFlags.VM_MTE_ALLOWED) == 0)
            return new FaultInfo { IsPermissionFault = isPerm, Error = Errno.EFAULT, Decision = decision };

        // Permissions (rules 13-14).
        var prot = KvmPgtableProt.R;
        if (writable)
            prot |= KvmPgtableProt.W;
        if (exec)
            prot |= KvmPgtableProt.X;
        if (forceNc)
            prot |= decision.Type == KvmS2MemType.NormalNc ? KvmPgtableProt.NORMAL_NC : KvmPgtableProt.DEVICE;
        else if (Host.Cpu.HasCacheDic)
            prot |= KvmPgtableProt.X;
        d?.Step(DecisionStage.Permissions, 13, $"prot {prot}{(Host.Cpu.HasCacheDic && !forceNc ? " (X pre-granted: DIC)" : "")}");

        var pa = pfn << PAGE_SHIFT;
        Errno e;
        IReadOnlyList<CacheMaintenance> cmos = [];
        if (isPerm && size == existing!.Value.Size)
            e = Stage2.RelaxPerms(ipa, prot, existing.Value.Pa, existing.Value.Size, out cmos);
        else
            e = Stage2.Map(ipa, size, AlignDown(pa, size), prot, mapMemory, out cmos, report: r is not null);
        if (e != Errno.None)
        {
            d?.Step(DecisionStage.Stage2, 14, $"the page-table layer refuses prot {prot}: -{e}");
            return new FaultInfo { IsPermissionFault = isPerm, Error = e, Decision = decision, Prot = prot };
        }
        // user_mem_abort does not read the leaf back: the vCPU finds it on its retry. Only the reason of the
        // FaultDecided names it, so the table is walked only when an observer listens. The CMOs KVM considered are
        // Stage2Mmu's CmoRequired events.
        if (d is not null)
            d.Step(DecisionStage.Stage2, 0, $"{(isPerm && size == existing!.Value.Size ? "relax_perms" : "map")}: {Stage2.GetLeaf(faultIpa)?.KvmText()}");
        if (writable)
            slot.MarkDirty(faultIpa >> PAGE_SHIFT);
        return new FaultInfo
        {
            IsPermissionFault = isPerm,
            Decision = decision,
            MappingSize = size,
            Prot = prot,
            Cmos = cmos,
        };
    }

    /// <summary>gmem_abort() (6.18): a guest_memfd-only slot maps the file's page, Normal, PAGE_SIZE.</summary>
    private FaultInfo GmemAbort(ulong faultIpa, bool exec, Memslot slot, GuestAccessResult? r, FaultDecisions? d)
    {
        var gfn = faultIpa >> PAGE_SHIFT;
        var file = slot.GuestMemfd!;
        if (file.GetPfn(slot.GuestMemfdPgoff + (gfn - slot.BaseGfn)) is not { } pfn)
        {
            d?.Step(DecisionStage.Pfn, 0, "kvm_gmem_get_pfn fails: -EFAULT");
            return new FaultInfo { IsPermissionFault = false, Error = Errno.EFAULT };
        }
        var decision = Stage2TypeDecision.Map(KvmS2MemType.Normal, 11, "guest_memfd page: ordinary RAM, Normal");
        if (d is not null)
            d.Facts = d.Facts with { GuestMemfd = true, Pfn = pfn, MapMemory = Host.Memory.PfnIsMapMemory(pfn), Type = KvmS2MemType.Normal, MappingSize = PAGE_SIZE };
        d?.Step(DecisionStage.Design, 11, decision.Reason);
        var prot = KvmPgtableProt.R | (slot.IsReadOnly ? 0 : KvmPgtableProt.W);
        if (exec || Host.Cpu.HasCacheDic)
            prot |= KvmPgtableProt.X;
        var ipa = faultIpa & ~(PAGE_SIZE - 1);
        var mapMemory = Host.Memory.PfnIsMapMemory(pfn);
        var e = Stage2.Map(ipa, PAGE_SIZE, pfn << PAGE_SHIFT, prot, mapMemory, out var cmos, report: r is not null);
        // The leaf is walked for the reason only, as in user_mem_abort.
        if (d is not null)
            d.Step(DecisionStage.Stage2, 0, $"map: {Stage2.GetLeaf(ipa)?.KvmText()}");
        if ((prot & KvmPgtableProt.W) != 0)
            slot.MarkDirty(gfn);
        return new FaultInfo
        {
            IsPermissionFault = false,
            Error = e,
            Decision = decision,
            MappingSize = PAGE_SIZE,
            Prot = prot,
            Cmos = cmos,
        };
    }

    /// <summary>
    /// get_vma_page_shift() (rule 15): the hugetlb page size, else PAGE. A VM_PFNMAP VMA is no longer sized from
    /// vm_pgoff (stable 6.12.113+ and 7.x, "KVM: arm64: Use stage-1 leaf size for VM_PFNMAP"): it gets the host's
    /// stage-1 leaf size in the transparent_hugepage_adjust step, as the arm64 oracle recorded (oracle/arm64).
    /// </summary>
    internal static int VmaPageShift(Vma vma)
    {
        if ((vma.Flags & VmFlags.VM_HUGETLB) != 0 && (vma.Flags & VmFlags.VM_PFNMAP) == 0)
            return vma.Backing is HugetlbBacking h ? System.Numerics.BitOperations.Log2(h.HugePageSize) : PAGE_SHIFT;
        return PAGE_SHIFT;
    }

    /// <summary>fault_supports_stage2_huge_mapping() (rule 16).</summary>
    internal static bool SupportsHuge(Memslot slot, ulong hva, ulong mapSize)
    {
        var gpaStart = slot.GuestPhysAddr;
        var uaddrStart = slot.UserspaceAddr;
        var uaddrEnd = uaddrStart + slot.Size;
        if ((gpaStart & (mapSize - 1)) != (uaddrStart & (mapSize - 1)))
            return false;
        var blockStart = hva & ~(mapSize - 1);
        return blockStart >= uaddrStart && blockStart + mapSize <= uaddrEnd;
    }
}
