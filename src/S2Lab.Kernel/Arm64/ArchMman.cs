using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Arm64;

/// <summary>What an mmap() maps, as far as arm64's <c>arch_calc_vm_flag_bits(file, flags)</c> can tell.</summary>
public enum MmapSource
{
    /// <summary>MAP_ANONYMOUS without MAP_HUGETLB (private or shared).</summary>
    Anonymous,

    /// <summary>MAP_ANONYMOUS|MAP_HUGETLB: the kernel sets up an internal hugetlbfs file (hugetlb_file_setup) but the flags keep MAP_ANONYMOUS.</summary>
    AnonymousHugetlb,

    /// <summary>A hugetlbfs file (a file under a hugetlbfs mount, or memfd_create(MFD_HUGETLB)) mapped without MAP_ANONYMOUS or MAP_HUGETLB.</summary>
    HugetlbfsFile,
}

/// <summary>
/// arm64's <c>arch/arm64/include/asm/mman.h</c>: which mmap()s get VM_MTE_ALLOWED, the flag KVM's MTE checks need
/// (rule 6 at memslot time, <c>kvm_vma_mte_allowed()</c> at fault time). The history (docs/rules.md, rule 6):
/// <list type="bullet">
/// <item>5.10 (9f3419315f3c "arm64: mte: Add PROT_MTE support to mmap() and mprotect()") to 6.12:
/// <c>system_supports_mte() &amp;&amp; (flags &amp; MAP_ANONYMOUS)</c>. An anonymous MAP_HUGETLB mapping carries
/// MAP_ANONYMOUS and so got VM_MTE_ALLOWED, by accident (hugetlb had no PROT_MTE support); a hugetlbfs file did not.</item>
/// <item>6.13 (25c17c4b55de "hugetlb: arm64: add mte support", and "arm64: mte: set VM_MTE_ALLOWED for hugetlbfs at
/// correct place"): <c>flags &amp; (MAP_ANONYMOUS | MAP_HUGETLB)</c>, or <c>shmem_file(file) || is_file_hugepages(file)</c>.
/// Every hugetlb mapping allows tags.</item>
/// <item>Not modelled (the model's versions are major.minor): the stable backport "arm64: mte: Do not allow PROT_MTE
/// on MAP_HUGETLB user mappings" (5.10.y to 6.12.y, February 2025, e.g. 6.1.130) takes the accidental flag
/// away again: <c>(flags &amp; MAP_ANONYMOUS) &amp;&amp; !(flags &amp; MAP_HUGETLB)</c>. 6.8.y and 6.9.y had ended
/// by then, so the <c>linux-6.8</c> and <c>linux-6.9</c> designs keep it.</item>
/// </list>
/// The model's kernel version is the host's design's <see cref="Kvm.Designs.IKvmDesign.BaseVersion"/>.
/// </summary>
public static class ArchMman
{
    /// <summary>The release that gave hugetlbfs files VM_MTE_ALLOWED (25c17c4b55de).</summary>
    public static readonly Kvm.Designs.KernelVersion HugetlbMteSince = new(6, 13);

    /// <summary><c>arch_calc_vm_flag_bits()</c> on <paramref name="host"/>: VM_MTE_ALLOWED or nothing.</summary>
    public static VmFlags CalcVmFlagBits(Host host, MmapSource source)
    {
        if (!host.Cpu.HasMte) // system_supports_mte()
            return VmFlags.VM_NONE;
        var allowed = source switch
        {
            MmapSource.Anonymous => true,
            // Before 6.13 by MAP_ANONYMOUS alone; from 6.13 by MAP_HUGETLB too.
            MmapSource.AnonymousHugetlb => true,
            MmapSource.HugetlbfsFile => host.Design.BaseVersion >= HugetlbMteSince,
            _ => false,
        };
        return allowed ? VmFlags.VM_MTE_ALLOWED : VmFlags.VM_NONE;
    }
}
