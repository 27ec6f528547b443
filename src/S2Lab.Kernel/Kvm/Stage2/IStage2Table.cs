using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>
/// The narrow seam between KVM's fault handling and the stage-2 page table (kvm_pgtable_stage2_*): everything the
/// kernel model needs, nothing more, so the table implementation can be swapped.
/// </summary>
internal interface IStage2Table
{
    /// <summary>kvm_pgtable_stage2_map: installs one leaf of <paramref name="size"/> (PAGE/PMD/PUD), replacing whatever overlaps.</summary>
    Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot, List<S2CacheMaintenance>? cmos);

    /// <summary>kvm_pgtable_stage2_unmap: removes every leaf intersecting [ipa, ipa + size).</summary>
    void Unmap(ulong ipa, ulong size);

    /// <summary>kvm_pgtable_get_leaf: the valid leaf covering <paramref name="ipa"/>, or null.</summary>
    S2Leaf? GetLeaf(ulong ipa);

    /// <summary>kvm_pgtable_stage2_wrprotect: clears W on every leaf intersecting the range.</summary>
    void WriteProtect(ulong ipa, ulong size, bool flush = true);

    /// <summary>kvm_pgtable_stage2_relax_perms: adds permissions to the leaf covering <paramref name="ipa"/>.</summary>
    Errno RelaxPerms(ulong ipa, KvmPgtableProt add, List<S2CacheMaintenance>? cmos);

    /// <summary>The MMU translating a guest access (TLB, else a walk that fills it); <paramref name="retry"/>: after a handled fault.</summary>
    S2TranslationResult Translate(ulong ipa, S2AccessKind access, bool retry);

    /// <summary>The leaf a translation used (or that its permission fault was about).</summary>
    S2Leaf LeafOf(ulong ipa, in S2TranslationResult t);

    /// <summary>Flushes the VM's TLB entries (after write-protecting without a flush).</summary>
    void FlushTlb();

    /// <summary>Every valid leaf, in IPA order.</summary>
    IEnumerable<S2Leaf> Leaves();
}
