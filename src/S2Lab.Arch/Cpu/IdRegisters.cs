namespace S2Lab.Arch.Cpu;

/// <summary>ID_AA64MMFR0_EL1: memory model feature register 0. Only the fields S2Lab reads are decoded.</summary>
public readonly record struct IdAa64Mmfr0El1(ulong Value)
{
    /// <summary>PARange, bits [3:0].</summary>
    public int PARange => (int)(Value & 0xF);

    /// <summary>TGran4, bits [31:28]: 0b0000 supported, 0b0001 supported with 52-bit (FEAT_LPA2), 0b1111 not supported.</summary>
    public int TGran4 => (int)((Value >> 28) & 0xF);

    /// <summary>
    /// Physical address size in bits from PARange (0b0000 32, 0001 36, 0010 40, 0011 42, 0100 44, 0101 48, 0110 52, 0111 56);
    /// null for a reserved encoding.
    /// </summary>
    public int? PaBits => PARange switch
    {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        7 => 56,
        _ => null,
    };

    /// <summary>The PARange encoding for a PA size in bits, or null if the size has no encoding.</summary>
    public static int? EncodePaBits(int bits) => bits switch
    {
        32 => 0,
        36 => 1,
        40 => 2,
        42 => 3,
        44 => 4,
        48 => 5,
        52 => 6,
        56 => 7,
        _ => null,
    };
}

/// <summary>ID_AA64MMFR2_EL1: memory model feature register 2.</summary>
public readonly record struct IdAa64Mmfr2El1(ulong Value)
{
    /// <summary>Bit position of the FWB field, [43:40].</summary>
    public const int FwbShift = 40;

    /// <summary>FWB, bits [43:40]: 0b0000 not implemented, 0b0001 FEAT_S2FWB implemented.</summary>
    public int Fwb => (int)((Value >> FwbShift) & 0xF);

    /// <summary>Linux's ARM64_HAS_STAGE2_FWB: FWB field at least 1 (ARM64_CPUID_FIELDS(ID_AA64MMFR2_EL1, FWB, IMP)).</summary>
    public bool HasStage2Fwb => Fwb >= 1;
}

/// <summary>CTR_EL0: cache type register.</summary>
public readonly record struct CtrEl0(ulong Value)
{
    public const int IdcBit = 28;
    public const int DicBit = 29;

    /// <summary>IminLine, bits [3:0]: log2 of the words in the smallest I-cache line.</summary>
    public int IminLine => (int)(Value & 0xF);

    /// <summary>DminLine, bits [19:16]: log2 of the words in the smallest D-cache line.</summary>
    public int DminLine => (int)((Value >> 16) & 0xF);

    /// <summary>IDC, bit 28: a D-cache clean to PoU is not required for instruction-to-data coherence.</summary>
    public bool Idc => ((Value >> IdcBit) & 1) != 0;

    /// <summary>DIC, bit 29: an I-cache invalidation to PoU is not required for instruction-to-data coherence.</summary>
    public bool Dic => ((Value >> DicBit) & 1) != 0;
}

/// <summary>ID_AA64PFR1_EL1: processor feature register 1. Only the MTE field is decoded.</summary>
public readonly record struct IdAa64Pfr1El1(ulong Value)
{
    public const int MteShift = 8;

    /// <summary>MTE, bits [11:8]: 0 none, 1 FEAT_MTE (instructions only), 2 FEAT_MTE2 (tags in memory), 3 FEAT_MTE3.</summary>
    public int Mte => (int)((Value >> MteShift) & 0xF);

    /// <summary>Linux's ARM64_MTE capability (system_supports_mte()): FEAT_MTE2 or later.</summary>
    public bool HasMte2 => Mte >= 2;
}
