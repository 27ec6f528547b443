// TEMPORARY bridge until the `attrs` branch (S2Lab.Arch.Attributes) is merged: the same names and values as its
// LinuxEncodings.cs so no caller changes when this file is deleted at the merge.
namespace S2Lab.Arch.Attributes;

/// <summary>The stage-2 memory types KVM asks for (the <c>attr</c> of <c>PAGE_S2_MEMATTR(attr, has_fwb)</c>).</summary>
public enum KvmS2MemType
{
    Normal,
    NormalNc,
    DeviceNGnRE,
    AsS1,
}

/// <summary>Linux's stage-2 MemAttr values (<c>asm/memory.h</c>).</summary>
public static class KvmS2MemAttr
{
    public const byte MT_S2_NORMAL = 0xF;
    public const byte MT_S2_NORMAL_NC = 0x5;
    public const byte MT_S2_DEVICE_nGnRE = 0x1;
    public const byte MT_S2_FWB_NORMAL = 6;
    public const byte MT_S2_FWB_NORMAL_NC = 5;
    public const byte MT_S2_FWB_DEVICE_nGnRE = 1;

    public static byte PageS2MemAttr(KvmS2MemType attr, bool hasFwb) => (attr, hasFwb) switch
    {
        (KvmS2MemType.Normal, false) => MT_S2_NORMAL,
        (KvmS2MemType.Normal, true) => MT_S2_FWB_NORMAL,
        (KvmS2MemType.NormalNc, false) => MT_S2_NORMAL_NC,
        (KvmS2MemType.NormalNc, true) => MT_S2_FWB_NORMAL_NC,
        (KvmS2MemType.DeviceNGnRE, false) => MT_S2_DEVICE_nGnRE,
        (KvmS2MemType.DeviceNGnRE, true) => MT_S2_FWB_DEVICE_nGnRE,
        (KvmS2MemType.AsS1, false) => MT_S2_NORMAL,
        (KvmS2MemType.AsS1, true) => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(attr)),
    };

    public static string Name(KvmS2MemType attr, bool hasFwb) => (hasFwb ? "MT_S2_FWB_" : "MT_S2_") + attr switch
    {
        KvmS2MemType.Normal => "NORMAL",
        KvmS2MemType.NormalNc => "NORMAL_NC",
        KvmS2MemType.DeviceNGnRE => "DEVICE_nGnRE",
        KvmS2MemType.AsS1 => "AS_S1",
        _ => attr.ToString(),
    };
}

/// <summary><c>enum kvm_pgtable_prot</c> with its real bit values.</summary>
[Flags]
public enum KvmPgtableProt : ulong
{
    None = 0,
    X = 1UL << 0,
    W = 1UL << 1,
    R = 1UL << 2,
    DEVICE = 1UL << 3,
    NORMAL_NC = 1UL << 4,
    SW0 = 1UL << 55,
    SW1 = 1UL << 56,
    SW2 = 1UL << 57,
    SW3 = 1UL << 58,
    RW = R | W,
    RWX = RW | X,
}
