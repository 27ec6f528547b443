namespace S2Lab.Arch.Translation;

/// <summary>
/// Every bit position of a VMSAv8-64 stage-2 descriptor (docs/arm-reference.md#descriptor). This is the one place
/// that knows them; everything else goes through <see cref="S2Descriptor"/>.
/// </summary>
public static class S2DescriptorBits
{
    /// <summary>Bit 0: valid.</summary>
    public const ulong Valid = 1UL << 0;

    /// <summary>Bit 1: table (levels &lt; 3) or page (level 3); 0 is a block (levels &lt; 3) or reserved (level 3).</summary>
    public const ulong TableOrPage = 1UL << 1;

    /// <summary>MemAttr[3:0] at bits [5:2].</summary>
    public const int MemAttrShift = 2;

    /// <summary>Mask of MemAttr in place.</summary>
    public const ulong MemAttrMask = 0xFUL << MemAttrShift;

    /// <summary>S2AP[1:0] at bits [7:6].</summary>
    public const int S2ApShift = 6;

    /// <summary>S2AP[0] (bit 6): read allowed.</summary>
    public const ulong S2ApRead = 1UL << 6;

    /// <summary>S2AP[1] (bit 7): write allowed.</summary>
    public const ulong S2ApWrite = 1UL << 7;

    /// <summary>SH[1:0] at bits [9:8] (OA[51:50] when VTCR_EL2.DS = 1).</summary>
    public const int ShShift = 8;

    /// <summary>Mask of SH in place.</summary>
    public const ulong ShMask = 3UL << ShShift;

    /// <summary>Bit 10: access flag.</summary>
    public const ulong Af = 1UL << 10;

    /// <summary>Bit 11: FnXS (FEAT_XS).</summary>
    public const ulong FnXs = 1UL << 11;

    /// <summary>OA[51:48] at bits [15:12] for the 64K granule with 52-bit PA (FEAT_LPA).</summary>
    public const int Oa51To48Lpa64KShift = 12;

    /// <summary>OA[49:48] at bits [49:48] when DS = 1 (FEAT_LPA2).</summary>
    public const int Oa49To48Lpa2Shift = 48;

    /// <summary>Mask of OA[49:48] in place when DS = 1.</summary>
    public const ulong Oa49To48Lpa2Mask = 3UL << Oa49To48Lpa2Shift;

    /// <summary>With DS = 1, OA[51:50] sits in the SH field, bits [9:8] (<see cref="ShShift"/>).</summary>
    public const int Oa51To50Lpa2Shift = ShShift;

    /// <summary>Highest bit of the in-place output address field (bit 47).</summary>
    public const ulong Oa47Mask = (1UL << 48) - 1;

    /// <summary>Bit 51: dirty bit modifier.</summary>
    public const ulong Dbm = 1UL << 51;

    /// <summary>Bit 52: contiguous hint.</summary>
    public const ulong Contiguous = 1UL << 52;

    /// <summary>Bit 53: XN[0] (FEAT_XNX only).</summary>
    public const ulong Xn0 = 1UL << 53;

    /// <summary>Bit 54: XN[1], the execute-never bit Linux uses (KVM_PTE_LEAF_ATTR_HI_S2_XN).</summary>
    public const ulong Xn1 = 1UL << 54;

    /// <summary>XN[1:0] at bits [54:53].</summary>
    public const int XnShift = 53;

    /// <summary>Mask of XN[1:0] in place.</summary>
    public const ulong XnMask = 3UL << XnShift;

    /// <summary>Software bits [58:55] (bit 55 is NS for Realm stage 2; Linux uses all four as software bits).</summary>
    public const int SoftwareShift = 55;

    /// <summary>Mask of the software bits in place (Linux KVM_PTE_LEAF_ATTR_HI_SW).</summary>
    public const ulong SoftwareMask = 0xFUL << SoftwareShift;

    /// <summary>PBHA / S2PO index bits [62:59].</summary>
    public const int PbhaShift = 59;

    /// <summary>Mask of PBHA in place.</summary>
    public const ulong PbhaMask = 0xFUL << PbhaShift;

    /// <summary>Bit 63: AMEC (FEAT_MEC).</summary>
    public const ulong Amec = 1UL << 63;

    /// <summary>The permission bits Linux compares when it decides whether a leaf needs an update (KVM_PTE_LEAF_ATTR_S2_PERMS).</summary>
    public const ulong PermissionMask = S2ApRead | S2ApWrite | Xn1 | Xn0;
}
