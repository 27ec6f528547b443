namespace S2Lab.Arch.Translation;

/// <summary>Where a descriptor keeps output-address bits above bit 47 (docs/arm-reference.md#descriptor).</summary>
public enum S2AddressFormat
{
    /// <summary>48-bit output addresses: OA[47:g] in descriptor bits [47:g].</summary>
    Pa48,

    /// <summary>64K granule with 52-bit PA (FEAT_LPA): OA[51:48] in descriptor bits [15:12].</summary>
    Lpa64K,

    /// <summary>VTCR_EL2.DS = 1 (FEAT_LPA2, 4K/16K): OA[49:48] in bits [49:48], OA[51:50] in bits [9:8]; SH comes from VTCR_EL2.SH0.</summary>
    Lpa2,
}
