using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

/// <summary>
/// Linux's <c>enum kvm_pgtable_prot</c> with its bit values: X = BIT(0), W = BIT(1), R = BIT(2), DEVICE = BIT(3),
/// NORMAL_NC = BIT(4), SW0..SW3 = BIT(55)..BIT(58). What KVM's fault handler passes to kvm_pgtable_stage2_map.
/// </summary>
[Flags]
public enum KvmPgtableProt : ulong
{
    None = 0,
    X = 1UL << 0,
    W = 1UL << 1,
    R = 1UL << 2,
    Device = 1UL << 3,
    NormalNc = 1UL << 4,
    Sw0 = 1UL << 55,
    Sw1 = 1UL << 56,
    Sw2 = 1UL << 57,
    Sw3 = 1UL << 58,
    RW = R | W,
    RWX = R | W | X,
}

public sealed partial class Stage2PageTable
{
    /// <summary>Linux MT_S2_DEVICE_nGnRE / MT_S2_FWB_DEVICE_nGnRE (the same value, 1).</summary>
    public const byte MemAttrDeviceNGnRE = 0x1;

    /// <summary>Linux MT_S2_NORMAL_NC / MT_S2_FWB_NORMAL_NC (the same value, 5).</summary>
    public const byte MemAttrNormalNc = 0x5;

    /// <summary>
    /// stage2_set_prot_attr (kvm-arm64-stage2 rule 14): the leaf attributes for a protection. DEVICE gives MemAttr
    /// DEVICE_nGnRE, NORMAL_NC gives NORMAL_NC, otherwise NORMAL for this table's FWB setting (0xF, or 6 with FWB);
    /// XN unless X; S2AP from R/W; SH Inner Shareable; AF set; software bits copied.
    /// </summary>
    /// <returns>0, or -EINVAL for DEVICE|NORMAL_NC, DEVICE|X and NORMAL_NC|X.</returns>
    public Stage2Errno TryGetLeafAttributes(KvmPgtableProt prot, out S2LeafAttributes attributes)
    {
        attributes = default;
        byte memAttr;
        switch (prot & (KvmPgtableProt.Device | KvmPgtableProt.NormalNc))
        {
            case KvmPgtableProt.Device | KvmPgtableProt.NormalNc:
                return Stage2Errno.EINVAL;
            case KvmPgtableProt.Device:
                if ((prot & KvmPgtableProt.X) != 0)
                {
                    return Stage2Errno.EINVAL;
                }

                memAttr = MemAttrDeviceNGnRE;
                break;
            case KvmPgtableProt.NormalNc:
                if ((prot & KvmPgtableProt.X) != 0)
                {
                    return Stage2Errno.EINVAL;
                }

                memAttr = MemAttrNormalNc;
                break;
            default:
                memAttr = NormalMemAttr;
                break;
        }

        var perms = (S2Permissions)(int)((ulong)prot & 7);
        attributes = new S2LeafAttributes(memAttr, perms, S2Shareability.InnerShareable, AccessFlag: true,
            SoftwareBits: (int)(((ulong)prot & B.SoftwareMask) >> B.SoftwareShift));
        return Stage2Errno.None;
    }

    /// <summary>
    /// kvm_pgtable_stage2_map with a <see cref="KvmPgtableProt"/>: builds the leaf attributes as stage2_set_prot_attr does
    /// (-EINVAL for the forbidden combinations, rule 14), then maps as <see cref="Map(ulong, ulong, ulong, S2LeafAttributes, ulong, List{S2CacheMaintenance}?, bool)"/>.
    /// </summary>
    public Stage2Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot, ulong maxMappingSize = ulong.MaxValue,
        List<S2CacheMaintenance>? cmos = null, bool handleFault = false)
    {
        Stage2Errno r = TryGetLeafAttributes(prot, out var attributes);
        return r != Stage2Errno.None ? r : Map(ipa, size, pa, attributes, maxMappingSize, cmos, handleFault);
    }
}
