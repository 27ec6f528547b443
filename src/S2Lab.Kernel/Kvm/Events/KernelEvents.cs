using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Events;

/// <summary>
/// Receives the kernel model's decisions, in the order they happen (<see cref="ModelKvmSystem.Observer"/>). With no
/// observer attached, no event is built: every emission site checks for one first.
/// </summary>
public interface IKernelObserver
{
    void On(KernelEvent e);
}

/// <summary>An observer that keeps every event in a list (tests, <c>explain</c>).</summary>
public sealed class KernelEventList : IKernelObserver
{
    private readonly List<KernelEvent> _events = [];

    public IReadOnlyList<KernelEvent> Events => _events;

    public void On(KernelEvent e) => _events.Add(e);

    public void Clear() => _events.Clear();
}

/// <summary>Base: a sequence number (per <see cref="ModelKvmSystem"/>), the host's name and the VM (1-based).</summary>
public abstract record KernelEvent(long Seq, string Host, int Vm);

/// <summary>
/// KVM_SET_USER_MEMORY_REGION(2) decided: the change (null when a generic check refused it before the change was
/// known, or nothing changed), the rule that decided it and the errno.
/// </summary>
public sealed record MemslotDecided(long Seq, string Host, int Vm, uint Slot, MemslotChange? Change, KvmMemFlags Flags,
    ulong Gpa, ulong Size, ulong Uaddr, Errno Result, int Rule, string Reason) : KernelEvent(Seq, Host, Vm);

/// <summary>
/// The facts a fault stage saw: the VMA (name, flags, pgprot text, cacheable per rule 3), whether the slot is
/// guest_memfd-only (no VMA; the file's pages are mapped cacheable), the pfn, pfn_is_map_memory, the stage-2 type
/// (null until known) and the mapping size (0 until known).
/// </summary>
public sealed record FaultFacts(string? Vma, VmFlags VmaFlags, string? VmaPgProt, bool VmaCacheable, bool GuestMemfd,
    ulong? Pfn, bool MapMemory, KvmS2MemType? Type, ulong MappingSize)
{
    public static readonly FaultFacts None = new(null, VmFlags.VM_NONE, null, false, false, null, false, null, 0);
}

/// <summary>
/// One stage of kvm_handle_guest_abort/user_mem_abort (memslot, VMA, pfn, design, mapping size, permissions, stage-2
/// write, exit), with its rule (0 if none) and the one-line reason.
/// </summary>
public sealed record FaultDecided(long Seq, string Host, int Vm, uint Vcpu, ulong Ipa, S2AccessKind Access,
    DecisionStage Stage, int Rule, string Reason, FaultFacts Facts) : KernelEvent(Seq, Host, Vm);

/// <summary>What a stage-2 write did.</summary>
public enum Stage2WriteKind
{
    /// <summary>kvm_pgtable_stage2_map: a new leaf.</summary>
    Map,

    /// <summary>kvm_pgtable_stage2_relax_perms: permissions added to an existing leaf.</summary>
    RelaxPerms,

    /// <summary>kvm_stage2_unmap_range.</summary>
    Unmap,

    /// <summary>kvm_stage2_wp_range (dirty logging).</summary>
    WriteProtect,
}

/// <summary>A stage-2 table change: the range, and for a map or relax the leaf as written.</summary>
public sealed record Stage2Written(long Seq, string Host, int Vm, Stage2WriteKind Kind, ulong Ipa, ulong Size,
    S2Leaf? Leaf, bool Fwb) : KernelEvent(Seq, Host, Vm);

/// <summary>
/// A CMO KVM considered for a new or upgraded leaf: whether it was needed (no FWB / no DIC) and whether it was
/// possible (the pfn has a kernel VA).
/// </summary>
public sealed record CmoRequired(long Seq, string Host, int Vm, CacheOp Op, ulong Pa, ulong Size, bool Needed,
    bool Possible, string Reason) : KernelEvent(Seq, Host, Vm)
{
    /// <summary>Needed but impossible.</summary>
    public bool IsImpossible => Needed && !Possible;

    /// <summary>The same text as <see cref="CacheMaintenance.ToString"/>.</summary>
    public string Text => new CacheMaintenance(Op, Pa, Size, Needed, Possible, Reason).ToString();
}

/// <summary>
/// A completed guest access: the vCPU, IPA, PA, the stage-2 leaf used, and, when the guest gave its stage-1 attribute
/// (<see cref="ModelKvmVcpu.Access"/>), the combine's input and effective result. The allocation-free
/// <see cref="ModelKvmVcpu.Read"/>/<see cref="ModelKvmVcpu.Write"/> carry no stage-1 attribute: Input and Effective
/// are null. Bytes are the data read (or fetched) or written; Path is the route the data took through the host's
/// caches (null on the allocation-free path, which does not report it).
/// </summary>
public sealed record MemoryAccessed(long Seq, string Host, int Vm, string Agent, uint Vcpu, S2AccessKind Access,
    ulong Ipa, ulong Pa, S2Leaf Leaf, CombineInput? Input, CombineResult? Effective, ReadOnlyMemory<byte> Bytes,
    AccessPath? Path = null)
    : KernelEvent(Seq, Host, Vm);

/// <summary>A guest access that did not complete: the MMIO exit, the abort injected, or KVM_RUN's errno.</summary>
public sealed record AccessEnded(long Seq, string Host, int Vm, uint Vcpu, S2AccessKind Access, ulong Ipa,
    GuestAccessOutcome Outcome, Errno RunError) : KernelEvent(Seq, Host, Vm);
