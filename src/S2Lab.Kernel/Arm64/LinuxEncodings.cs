using S2Lab.Arch.Attributes;

namespace S2Lab.Kernel.Arm64;

/// <summary>
/// Linux arm64 stage-1 memory types: the MAIR_EL1 layout of current mainline (<c>asm/memory.h</c>, <c>proc.S</c>
/// MAIR_EL1_SET, <c>sysreg.h</c> MAIR_ATTR_*), docs/arm-reference.md#linux-mair.
/// </summary>
public static class LinuxMair
{
    /// <summary>AttrIndx of Normal WB memory. Must be 0: <c>vm_get_page_prot()</c> ORs in MT_NORMAL_TAGGED.</summary>
    public const int MT_NORMAL = 0;

    /// <summary>AttrIndx of Tagged Normal memory (0xFF at boot, 0xF0 after <c>mte_cpu_setup</c>).</summary>
    public const int MT_NORMAL_TAGGED = 1;

    /// <summary>AttrIndx of Normal Non-cacheable (write-combining) memory.</summary>
    public const int MT_NORMAL_NC = 2;

    /// <summary>AttrIndx of Device-nGnRnE memory.</summary>
    public const int MT_DEVICE_nGnRnE = 3;

    /// <summary>AttrIndx of Device-nGnRE memory (ioremap).</summary>
    public const int MT_DEVICE_nGnRE = 4;

    /// <summary>MAIR_ATTR_NORMAL: iWB oWB RWA non-transient.</summary>
    public const byte MAIR_ATTR_NORMAL = 0xFF;

    /// <summary>MAIR_ATTR_NORMAL_TAGGED: Tagged Normal (FEAT_MTE2).</summary>
    public const byte MAIR_ATTR_NORMAL_TAGGED = 0xF0;

    /// <summary>MAIR_ATTR_NORMAL_NC: iNC oNC.</summary>
    public const byte MAIR_ATTR_NORMAL_NC = 0x44;

    /// <summary>MAIR_ATTR_DEVICE_nGnRnE.</summary>
    public const byte MAIR_ATTR_DEVICE_nGnRnE = 0x00;

    /// <summary>MAIR_ATTR_DEVICE_nGnRE.</summary>
    public const byte MAIR_ATTR_DEVICE_nGnRE = 0x04;

    /// <summary>MAIR_EL1_SET as programmed at boot (MT_NORMAL_TAGGED still 0xFF).</summary>
    public const ulong MairEl1 = 0x0000_0004_0044_FFFFUL;

    /// <summary>MAIR_EL1 after the MTE fix-up (MT_NORMAL_TAGGED = 0xF0).</summary>
    public const ulong MairEl1WithMte = 0x0000_0004_0044_F0FFUL;

    /// <summary>The MAIR_EL1 value Linux runs with, with or without MTE.</summary>
    public static ulong MairEl1For(bool mte) => mte ? MairEl1WithMte : MairEl1;

    /// <summary>The MAIR byte Linux uses for an AttrIndx (0..7; indexes 5..7 are 0x00).</summary>
    public static byte AttrFor(int attrIndx, bool mte) => Mair.AttrField(MairEl1For(mte), attrIndx);

    /// <summary>
    /// Rule 3 (docs/rules.md): a VMA is cacheable unless its AttrIndx is MT_NORMAL_NC, MT_DEVICE_nGnRnE or
    /// MT_DEVICE_nGnRE; MT_NORMAL and MT_NORMAL_TAGGED (and the unused indexes 5..7) are cacheable.
    /// </summary>
    public static bool IsCacheableAttrIndx(int attrIndx) =>
        attrIndx is not (MT_NORMAL_NC or MT_DEVICE_nGnRnE or MT_DEVICE_nGnRE);

    /// <summary>The Linux stage-1 memory types, in AttrIndx order: (macro name, AttrIndx).</summary>
    public static IReadOnlyList<(string Name, int AttrIndx)> Types { get; } =
    [
        ("MT_NORMAL", MT_NORMAL),
        ("MT_NORMAL_TAGGED", MT_NORMAL_TAGGED),
        ("MT_NORMAL_NC", MT_NORMAL_NC),
        ("MT_DEVICE_nGnRnE", MT_DEVICE_nGnRnE),
        ("MT_DEVICE_nGnRE", MT_DEVICE_nGnRE),
    ];
}

/// <summary>The stage-2 memory types KVM asks for (the <c>attr</c> of <c>PAGE_S2_MEMATTR(attr, has_fwb)</c>).</summary>
public enum KvmS2MemType
{
    /// <summary>MT_S2_NORMAL / MT_S2_FWB_NORMAL: guest RAM and cacheable memory.</summary>
    Normal,

    /// <summary>MT_S2_NORMAL_NC / MT_S2_FWB_NORMAL_NC: VFIO write-combine (VM_ALLOW_ANY_UNCACHED), Linux 6.9+.</summary>
    NormalNc,

    /// <summary>MT_S2_DEVICE_nGnRE / MT_S2_FWB_DEVICE_nGnRE: device memory.</summary>
    DeviceNGnRE,

    /// <summary>MT_S2_AS_S1 / MT_S2_FWB_AS_S1: stage 1 decides (2026, pKVM host stage 2).</summary>
    AsS1,
}

/// <summary>Linux's stage-2 MemAttr values (<c>asm/memory.h</c>), docs/arm-reference.md#kvm-s2-encodings.</summary>
public static class KvmS2MemAttr
{
    /// <summary>FWB=0: oWB iWB, the weakest Normal, so stage 1 decides.</summary>
    public const byte MT_S2_NORMAL = 0xF;

    /// <summary>FWB=0: oNC iNC.</summary>
    public const byte MT_S2_NORMAL_NC = 0x5;

    /// <summary>FWB=0: Device-nGnRE.</summary>
    public const byte MT_S2_DEVICE_nGnRE = 0x1;

    /// <summary>FWB=0: stage 1 decides (same value as MT_S2_NORMAL).</summary>
    public const byte MT_S2_AS_S1 = MT_S2_NORMAL;

    /// <summary>FWB=1: force Normal write-back.</summary>
    public const byte MT_S2_FWB_NORMAL = 6;

    /// <summary>FWB=1: Normal NC unless stage 1 is Device.</summary>
    public const byte MT_S2_FWB_NORMAL_NC = 5;

    /// <summary>FWB=1: Device-nGnRE (the stronger of it and a stage-1 Device type).</summary>
    public const byte MT_S2_FWB_DEVICE_nGnRE = 1;

    /// <summary>FWB=1: use the stage-1 attributes.</summary>
    public const byte MT_S2_FWB_AS_S1 = 7;

    /// <summary>Proposed FEAT_MTE_PERM encodings (not in mainline): FWB=0 0b0100, FWB=1 0b1110.</summary>
    public const byte MT_S2_NORMAL_NOTAGACCESS = 0b0100;

    /// <summary>Proposed FEAT_MTE_PERM encoding with FWB (not in mainline).</summary>
    public const byte MT_S2_FWB_NORMAL_NOTAGACCESS = 0b1110;

    /// <summary><c>PAGE_S2_MEMATTR(attr, has_fwb)</c>: the MemAttr value for a type, MT_S2_FWB_* when FWB is used.</summary>
    public static byte PageS2MemAttr(KvmS2MemType attr, bool hasFwb) => (attr, hasFwb) switch
    {
        (KvmS2MemType.Normal, false) => MT_S2_NORMAL,
        (KvmS2MemType.Normal, true) => MT_S2_FWB_NORMAL,
        (KvmS2MemType.NormalNc, false) => MT_S2_NORMAL_NC,
        (KvmS2MemType.NormalNc, true) => MT_S2_FWB_NORMAL_NC,
        (KvmS2MemType.DeviceNGnRE, false) => MT_S2_DEVICE_nGnRE,
        (KvmS2MemType.DeviceNGnRE, true) => MT_S2_FWB_DEVICE_nGnRE,
        (KvmS2MemType.AsS1, false) => MT_S2_AS_S1,
        (KvmS2MemType.AsS1, true) => MT_S2_FWB_AS_S1,
        _ => throw new ArgumentOutOfRangeException(nameof(attr), attr, "unknown stage-2 memory type"),
    };

    /// <summary>
    /// The inverse of <see cref="PageS2MemAttr"/>: the KVM type a MemAttr value stands for under an FWB setting, or null
    /// for a value <c>PAGE_S2_MEMATTR</c> never produces. Without FWB, MT_S2_AS_S1 has MT_S2_NORMAL's value and reads as
    /// <see cref="KvmS2MemType.Normal"/>.
    /// </summary>
    public static KvmS2MemType? TypeOf(byte memAttr, bool hasFwb) => (memAttr, hasFwb) switch
    {
        (MT_S2_NORMAL, false) or (MT_S2_FWB_NORMAL, true) => KvmS2MemType.Normal,
        (MT_S2_NORMAL_NC, false) or (MT_S2_FWB_NORMAL_NC, true) => KvmS2MemType.NormalNc,
        (MT_S2_DEVICE_nGnRE, false) or (MT_S2_FWB_DEVICE_nGnRE, true) => KvmS2MemType.DeviceNGnRE,
        (MT_S2_FWB_AS_S1, true) => KvmS2MemType.AsS1,
        _ => null,
    };

    /// <summary>The Linux macro name of a stage-2 type under an FWB setting, e.g. "MT_S2_FWB_NORMAL".</summary>
    public static string Name(KvmS2MemType attr, bool hasFwb) => (hasFwb ? "MT_S2_FWB_" : "MT_S2_") + attr switch
    {
        KvmS2MemType.Normal => "NORMAL",
        KvmS2MemType.NormalNc => "NORMAL_NC",
        KvmS2MemType.DeviceNGnRE => "DEVICE_nGnRE",
        KvmS2MemType.AsS1 => "AS_S1",
        _ => attr.ToString(),
    };
}

/// <summary><c>enum kvm_pgtable_prot</c> (arch/arm64/include/asm/kvm_pgtable.h) with its real bit values.</summary>
[Flags]
public enum KvmPgtableProt : ulong
{
    None = 0,
    X = 1UL << 0,
    W = 1UL << 1,
    R = 1UL << 2,

    /// <summary>Map as MT_S2_[FWB_]DEVICE_nGnRE; must not be executable.</summary>
    DEVICE = 1UL << 3,

    /// <summary>Map as MT_S2_[FWB_]NORMAL_NC; must not be executable. DEVICE together with NORMAL_NC is -EINVAL.</summary>
    NORMAL_NC = 1UL << 4,

    SW0 = 1UL << 55,
    SW1 = 1UL << 56,
    SW2 = 1UL << 57,
    SW3 = 1UL << 58,

    /// <summary>KVM_PGTABLE_PROT_RW.</summary>
    RW = R | W,

    /// <summary>KVM_PGTABLE_PROT_RWX.</summary>
    RWX = RW | X,
}
