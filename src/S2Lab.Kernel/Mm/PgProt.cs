using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Kernel.Mm;

/// <summary>
/// The arm64 stage-1 MAIR attribute index Linux stores in a PTE (arch/arm64/include/asm/memory.h), i.e. the
/// AttrIndx field of vm_page_prot.
/// </summary>
public enum MtIndex
{
    MT_NORMAL = LinuxMair.MT_NORMAL,
    MT_NORMAL_TAGGED = LinuxMair.MT_NORMAL_TAGGED,
    MT_NORMAL_NC = LinuxMair.MT_NORMAL_NC,
    MT_DEVICE_nGnRnE = LinuxMair.MT_DEVICE_nGnRnE,
    MT_DEVICE_nGnRE = LinuxMair.MT_DEVICE_nGnRE,
}

/// <summary>
/// vm_page_prot, reduced to what KVM reads: the stage-1 attribute index. Permissions live in <see cref="VmFlags"/>.
/// </summary>
public readonly record struct PgProt(MtIndex AttrIndex)
{
    /// <summary>The default protection of a user mapping (PAGE_SHARED/PAGE_KERNEL family): MT_NORMAL.</summary>
    public static PgProt Default => new(MtIndex.MT_NORMAL);

    /// <summary>
    /// The MAIR_EL1 byte at this index on a host without MTE, which is what the model's CPUs are: Linux boots with
    /// MT_NORMAL_TAGGED = 0xFF and only <c>mte_cpu_setup</c> rewrites it to 0xF0 (see <see cref="MairByteFor"/>).
    /// </summary>
    public byte MairByte => MairByteFor(hostHasMte: false);

    /// <summary>The MAIR_EL1 byte at this index, with or without FEAT_MTE2 on the host (<see cref="LinuxMair.AttrFor"/>).</summary>
    public byte MairByteFor(bool hostHasMte) => LinuxMair.AttrFor((int)AttrIndex, hostHasMte);

    /// <summary>Rule 3 (kvm_vma_is_cacheable): <see cref="LinuxMair.IsCacheableAttrIndx"/> of the index.</summary>
    public bool IsCacheable => LinuxMair.IsCacheableAttrIndx((int)AttrIndex);

    public override string ToString() => AttrIndex.ToString();
}
