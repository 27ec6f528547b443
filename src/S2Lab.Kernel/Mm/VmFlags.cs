using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Mm;

/// <summary>
/// vm_area_struct.vm_flags with Linux's bit values (include/linux/mm.h, 64-bit, arm64 arch bits).
/// </summary>
[Flags]
public enum VmFlags : ulong
{
    VM_NONE = 0,
    VM_READ = 0x0000_0001,
    VM_WRITE = 0x0000_0002,
    VM_EXEC = 0x0000_0004,
    VM_SHARED = 0x0000_0008,
    VM_MAYREAD = 0x0000_0010,
    VM_MAYWRITE = 0x0000_0020,
    VM_MAYEXEC = 0x0000_0040,
    VM_MAYSHARE = 0x0000_0080,
    VM_GROWSDOWN = 0x0000_0100,

    /// <summary>Page ranges managed without struct page, just pure PFN (remap_pfn_range).</summary>
    VM_PFNMAP = 0x0000_0400,
    VM_LOCKED = 0x0000_2000,

    /// <summary>Memory-mapped I/O or similar.</summary>
    VM_IO = 0x0000_4000,
    VM_DONTCOPY = 0x0002_0000,
    VM_DONTEXPAND = 0x0004_0000,
    VM_ACCOUNT = 0x0010_0000,
    VM_NORESERVE = 0x0020_0000,

    /// <summary>Huge TLB page VM (hugetlbfs).</summary>
    VM_HUGETLB = 0x0040_0000,
    VM_DONTDUMP = 0x0400_0000,

    /// <summary>Can contain struct page and pure PFN pages (vmf_insert_mixed).</summary>
    VM_MIXEDMAP = 0x1000_0000,

    /// <summary>MADV_HUGEPAGE marked this VMA.</summary>
    VM_HUGEPAGE = 0x2000_0000,
    VM_NOHUGEPAGE = 0x4000_0000,

    /// <summary>arm64 VM_HIGH_ARCH_0: the VMA has MTE tags enabled.</summary>
    VM_MTE = 1UL << 32,

    /// <summary>arm64 VM_HIGH_ARCH_1: MTE may be enabled on this VMA.</summary>
    VM_MTE_ALLOWED = 1UL << 33,

    /// <summary>Bit 39 (6.9+): vfio says any non-cacheable type is safe for this memory in KVM.</summary>
    VM_ALLOW_ANY_UNCACHED = 1UL << 39,
}

/// <summary>Helpers over <see cref="VmFlags"/>.</summary>
public static class VmFlagsExtensions
{
    /// <summary>calc_vm_prot_bits: PROT_* to VM_READ/WRITE/EXEC.</summary>
    public static VmFlags FromProt(Prot prot) =>
        (prot.HasFlag(Prot.PROT_READ) ? VmFlags.VM_READ : 0) |
        (prot.HasFlag(Prot.PROT_WRITE) ? VmFlags.VM_WRITE : 0) |
        (prot.HasFlag(Prot.PROT_EXEC) ? VmFlags.VM_EXEC : 0);

    /// <summary>True if the VMA is VM_PFNMAP or VM_MIXEDMAP (the pages may lack struct page).</summary>
    public static bool IsPfnmapOrMixed(this VmFlags f) => (f & (VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP)) != 0;
}
