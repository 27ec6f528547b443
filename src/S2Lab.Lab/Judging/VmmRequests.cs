using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Lab.Judging;

/// <summary>
/// Memslot refusals the VMM's own request causes: KVM refuses them in every design and whatever the memory type, so
/// they say nothing about a design's memory types (scorecard property 3, docs/rules.md#property-3).
/// </summary>
public static class VmmRequests
{
    /// <summary>
    /// Why creating a memslot over <paramref name="vma"/> with <paramref name="flags"/>, in a VM with MTE on or off,
    /// failed with <paramref name="errno"/> because of what the VMM asked for; null when the VMM's request does not
    /// explain it. Both checks are kvm_arch_prepare_memory_region()'s own, made before a design sees the VMA (rule 6):
    /// MTE needs VM_MTE_ALLOWED on every VMA, and dirty logging is never allowed on a VM_PFNMAP VMA.
    /// </summary>
    public static string? RefusalCause(Vma vma, KvmMemFlags flags, bool mte, Errno errno)
    {
        if (errno != Errno.EINVAL)
            return null;
        if (mte && (vma.Flags & VmFlags.VM_MTE_ALLOWED) == 0)
            return $"the VMM enabled MTE and {vma.Name} lacks VM_MTE_ALLOWED (rule 6, in every design)";
        if ((flags & KvmMemFlags.LOG_DIRTY_PAGES) != 0 && (vma.Flags & VmFlags.VM_PFNMAP) != 0)
            return $"the VMM asked for dirty logging of the VM_PFNMAP VMA {vma.Name} (rule 6, in every design)";
        return null;
    }
}
