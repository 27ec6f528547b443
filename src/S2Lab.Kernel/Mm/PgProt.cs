namespace S2Lab.Kernel.Mm;

/// <summary>
/// The arm64 stage-1 MAIR attribute index Linux stores in a PTE (arch/arm64/include/asm/memory.h), i.e. the
/// AttrIndx field of vm_page_prot.
/// </summary>
public enum MtIndex
{
    MT_NORMAL = 0,
    MT_NORMAL_TAGGED = 1,
    MT_NORMAL_NC = 2,
    MT_DEVICE_nGnRnE = 3,
    MT_DEVICE_nGnRE = 4,
}

/// <summary>
/// vm_page_prot, reduced to what KVM reads: the stage-1 attribute index. Permissions live in <see cref="VmFlags"/>.
/// </summary>
public readonly record struct PgProt(MtIndex AttrIndex)
{
    /// <summary>The default protection of a user mapping (PAGE_SHARED/PAGE_KERNEL family): MT_NORMAL.</summary>
    public static PgProt Default => new(MtIndex.MT_NORMAL);

    /// <summary>The MAIR byte Linux programs for each index (MAIR_EL1 as set up in proc.S).</summary>
    public byte MairByte => AttrIndex switch
    {
        MtIndex.MT_NORMAL => 0xFF,
        MtIndex.MT_NORMAL_TAGGED => 0xF0,
        MtIndex.MT_NORMAL_NC => 0x44,
        MtIndex.MT_DEVICE_nGnRnE => 0x00,
        MtIndex.MT_DEVICE_nGnRE => 0x04,
        _ => 0x00,
    };

    /// <summary>
    /// Rule 3 (kvm_vma_is_cacheable): cacheable unless the index is MT_NORMAL_NC, MT_DEVICE_nGnRnE or MT_DEVICE_nGnRE.
    /// </summary>
    public bool IsCacheable => AttrIndex is not (MtIndex.MT_NORMAL_NC or MtIndex.MT_DEVICE_nGnRnE or MtIndex.MT_DEVICE_nGnRE);

    /// <summary>pgprot_noncached(): Device-nGnRE.</summary>
    public PgProt NonCached() => new(MtIndex.MT_DEVICE_nGnRE);

    /// <summary>pgprot_writecombine(): Normal non-cacheable.</summary>
    public PgProt WriteCombine() => new(MtIndex.MT_NORMAL_NC);

    public override string ToString() => AttrIndex.ToString();
}
