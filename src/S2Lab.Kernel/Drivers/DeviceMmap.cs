using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Drivers;

/// <summary>What the vfio-pci and nvgrace-gpu mmap handlers share: the range check, the VMA flags, the VMA alignment.</summary>
internal static class DeviceMmap
{
    /// <summary>
    /// The length of an mmap of a device region at <paramref name="offset"/> (<paramref name="length"/>, or the rest of
    /// the region), or false (the caller returns -EINVAL) for an unaligned offset, an offset past the region, an empty
    /// length or a range beyond the region. Compared without adding, so offsets near 2^64 cannot wrap into the region.
    /// </summary>
    public static bool TryRange(ulong regionSize, ulong offset, ulong? length, out ulong len)
    {
        len = length ?? regionSize - offset;
        return IsAligned(offset, PAGE_SIZE) && offset < regionSize && len != 0 && len <= regionSize - offset;
    }

    /// <summary>
    /// The flags of a device VMA: those of <paramref name="prot"/>, VM_SHARED|VM_MAYSHARE|VM_MAYREAD|VM_MAYWRITE,
    /// VM_IO|VM_DONTEXPAND|VM_DONTDUMP, and <paramref name="extra"/> (VM_PFNMAP or VM_MIXEDMAP, VM_ALLOW_ANY_UNCACHED).
    /// </summary>
    public static VmFlags Flags(Prot prot, VmFlags extra) =>
        VmFlagsExtensions.FromProt(prot) | VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE |
        VmFlags.VM_IO | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP | extra;

    /// <summary>
    /// The alignment of the VMA's start for a mapping of [pa, pa + length): PUD or PMD when the mapping is that large and
    /// <paramref name="pa"/> is so aligned (so stage 2 can use block mappings), else PAGE; PAGE for a fixed address.
    /// </summary>
    public static ulong Alignment(ulong pa, ulong length, ulong? fixedAddress) =>
        fixedAddress is not null ? PAGE_SIZE
        : length >= PUD_SIZE && IsAligned(pa, PUD_SIZE) ? PUD_SIZE
        : length >= PMD_SIZE && IsAligned(pa, PMD_SIZE) ? PMD_SIZE : PAGE_SIZE;
}
