using System.Runtime.CompilerServices;

namespace S2Lab.Arch.Attributes;

/// <summary>The two memory types of VMSAv8-64.</summary>
public enum MemoryType : byte
{
    /// <summary>Device memory: never cacheable, always Outer Shareable in effect.</summary>
    Device,

    /// <summary>Normal memory, with inner and outer cacheability.</summary>
    Normal,
}

/// <summary>Device memory types, numbered as the <c>dd</c> field (<c>DecodeDevice</c>): a smaller value is stronger.</summary>
public enum DeviceType : byte
{
    nGnRnE = 0,
    nGnRE = 1,
    nGRE = 2,
    GRE = 3,
}

/// <summary>Cacheability of one half (inner or outer) of a Normal attribute, weakest first (NC &lt; WT &lt; WB).</summary>
public enum Cacheability : byte
{
    NonCacheable,
    WriteThrough,
    WriteBack,
}

/// <summary>Allocation hints of a cacheable half; the values are the MAIR nibble bits R (bit 1) and W (bit 0).</summary>
[Flags]
public enum AllocationHints : byte
{
    /// <summary>No-allocate.</summary>
    None = 0,
    WriteAllocate = 1 << 0,
    ReadAllocate = 1 << 1,
    ReadWriteAllocate = ReadAllocate | WriteAllocate,
}

/// <summary>Shareability, with the values of the descriptor SH[1:0] field (0b01 is reserved).</summary>
public enum Shareability : byte
{
    /// <summary>Non-shareable (0b00).</summary>
    NSH = 0b00,

    /// <summary>Reserved encoding 0b01: CONSTRAINED UNPREDICTABLE when decoded; see <see cref="ShareabilityRules.Resolve"/>.</summary>
    Reserved = 0b01,

    /// <summary>Outer Shareable (0b10).</summary>
    OSH = 0b10,

    /// <summary>Inner Shareable (0b11).</summary>
    ISH = 0b11,
}

/// <summary>Shareability rules of the combine step (<c>S2CombineS1Shareability</c>, <c>EffectiveShareability</c>).</summary>
public static class ShareabilityRules
{
    /// <summary>
    /// The value S2Lab uses for an SH field: the field itself, except that the reserved encoding 0b01
    /// (CONSTRAINED UNPREDICTABLE: NSH, ISH or OSH) is taken as <see cref="Shareability.OSH"/>, the widest choice,
    /// so that the model never under-reports coherence. (KVM's AT emulation reports NSH instead.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Shareability Resolve(Shareability sh) => sh == Shareability.Reserved ? Shareability.OSH : sh;

    /// <summary>Rank for combining: NSH &lt; ISH &lt; OSH.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Rank(Shareability sh) => sh switch
    {
        Shareability.OSH => 2,
        Shareability.ISH => 1,
        _ => 0,
    };

    /// <summary><c>S2CombineS1Shareability</c>: OSH if either is OSH, else ISH if either is ISH, else NSH (reserved resolved first).</summary>
    public static Shareability Combine(Shareability s1, Shareability s2)
    {
        s1 = Resolve(s1);
        s2 = Resolve(s2);
        return Rank(s1) >= Rank(s2) ? s1 : s2;
    }

    /// <summary><c>EffectiveShareability</c>: Device and Normal iNC oNC are Outer Shareable; anything else keeps <paramref name="sh"/>.</summary>
    public static Shareability Effective(in MemoryAttributes attributes, Shareability sh) =>
        attributes.IsNonCacheable ? Shareability.OSH : Resolve(sh);

    /// <summary>Parses NSH/ISH/OSH (case-insensitive); false otherwise.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Shareability sh)
    {
        sh = default;
        if (text.Length != 3)
        {
            return false;
        }

        if (text.Equals("NSH", StringComparison.OrdinalIgnoreCase))
        {
            sh = Shareability.NSH;
        }
        else if (text.Equals("ISH", StringComparison.OrdinalIgnoreCase))
        {
            sh = Shareability.ISH;
        }
        else if (text.Equals("OSH", StringComparison.OrdinalIgnoreCase))
        {
            sh = Shareability.OSH;
        }
        else
        {
            return false;
        }

        return true;
    }
}

/// <summary>
/// One half (inner or outer) of a Normal attribute. Non-cacheable halves carry no hints and are never transient,
/// so equal meanings compare equal.
/// </summary>
public readonly record struct CacheAttributes
{
    /// <summary>Creates a half; hints and transient are dropped for <see cref="Cacheability.NonCacheable"/>.</summary>
    public CacheAttributes(Cacheability cacheability, AllocationHints hints = AllocationHints.ReadWriteAllocate, bool transient = false)
    {
        Cacheability = cacheability;
        Hints = cacheability == Cacheability.NonCacheable ? AllocationHints.None : hints & AllocationHints.ReadWriteAllocate;
        Transient = cacheability != Cacheability.NonCacheable && transient;
    }

    public Cacheability Cacheability { get; }
    public AllocationHints Hints { get; }
    public bool Transient { get; }

    /// <summary>Non-cacheable.</summary>
    public static CacheAttributes NonCacheable => default;

    /// <summary>Write-back, read and write allocate, non-transient (the 0xF nibble).</summary>
    public static CacheAttributes WriteBackRwa => new(Cacheability.WriteBack);

    /// <summary>True for WT or WB.</summary>
    public bool IsCacheable => Cacheability != Cacheability.NonCacheable;

    /// <summary>
    /// The MAIR nibble (<c>DecodeLDFAttr</c> inverted): NC 0b0100, WT 0b10RW (transient 0b00RW), WB 0b11RW (transient 0b01RW).
    /// A transient half with no allocation hints has no encoding of its own (0b0000 is RESMAIR, 0b0100 is NC);
    /// it encodes as the non-transient form.
    /// </summary>
    public byte ToNibble()
    {
        if (Cacheability == Cacheability.NonCacheable)
        {
            return 0b0100;
        }

        var transient = Transient && Hints != AllocationHints.None;
        var typeBits = Cacheability == Cacheability.WriteBack ? 0b0100 : 0;
        var persistent = transient ? 0 : 0b1000;
        return (byte)(persistent | typeBits | (int)Hints);
    }

    /// <summary>Decodes a MAIR nibble other than 0b0000 (which has no meaning of its own: see <see cref="Mair"/>).</summary>
    public static CacheAttributes FromNibble(int nibble)
    {
        nibble &= 0xF;
        if (nibble == 0b0100)
        {
            return NonCacheable;
        }

        var cacheability = (nibble & 0b0100) != 0 ? Cacheability.WriteBack : Cacheability.WriteThrough;
        return new CacheAttributes(cacheability, (AllocationHints)(nibble & 0b11), transient: (nibble & 0b1000) == 0);
    }

    /// <summary>"NC", or "WB.RWA", "WT.T.RA", ... (no-allocate is "NA").</summary>
    public override string ToString()
    {
        if (Cacheability == Cacheability.NonCacheable)
        {
            return "NC";
        }

        var kind = Cacheability == Cacheability.WriteBack ? "WB" : "WT";
        var hints = Hints switch
        {
            AllocationHints.ReadWriteAllocate => "RWA",
            AllocationHints.ReadAllocate => "RA",
            AllocationHints.WriteAllocate => "WA",
            _ => "NA",
        };
        return Transient ? $"{kind}.T.{hints}" : $"{kind}.{hints}";
    }
}

/// <summary>
/// A decoded memory attribute: Device with a type, or Normal with inner and outer halves; plus the MTE tag flag and
/// the FEAT_XS attribute (XS=1 is the default and the only value without FEAT_XS). Build one with the factories
/// (<see cref="Device"/>, <see cref="Normal"/>) or <see cref="Mair.Decode"/>; <c>default</c> is Device-nGnRnE.
/// </summary>
public readonly record struct MemoryAttributes
{
    private MemoryAttributes(MemoryType type, DeviceType device, CacheAttributes inner, CacheAttributes outer, bool tagged, bool xs)
    {
        Type = type;
        DeviceType = device;
        Inner = inner;
        Outer = outer;
        Tagged = tagged;
        _xsZero = !xs;
    }

    // Stored inverted so that default(MemoryAttributes) has XS=1 (Device-nGnRnE, encoding 0x00).
    private readonly bool _xsZero;

    public MemoryType Type { get; }

    /// <summary>The device type; <see cref="DeviceType.nGnRnE"/> (0) for Normal memory.</summary>
    public DeviceType DeviceType { get; }

    /// <summary>Inner cacheability; non-cacheable for Device memory.</summary>
    public CacheAttributes Inner { get; }

    /// <summary>Outer cacheability; non-cacheable for Device memory.</summary>
    public CacheAttributes Outer { get; }

    /// <summary>MTE Allocation Tagged (MAIR 0xF0 with FEAT_MTE2). Only ever set on Normal iWB oWB RWA non-transient.</summary>
    public bool Tagged { get; }

    /// <summary>The XS attribute (FEAT_XS). True (XS=1) unless an XS form or a WB/WB combine cleared it.</summary>
    public bool Xs => !_xsZero;

    /// <summary>A Device attribute.</summary>
    public static MemoryAttributes Device(DeviceType type, bool xs = true) =>
        new(MemoryType.Device, type, default, default, false, xs);

    /// <summary>An untagged Normal attribute.</summary>
    public static MemoryAttributes Normal(CacheAttributes inner, CacheAttributes outer, bool xs = true) =>
        new(MemoryType.Normal, default, inner, outer, false, xs);

    /// <summary>Normal iNC oNC.</summary>
    public static MemoryAttributes NormalNonCacheable(bool xs = true) => Normal(default, default, xs);

    /// <summary>Normal iWB oWB RWA non-transient (0xFF).</summary>
    public static MemoryAttributes NormalWriteBack => Normal(CacheAttributes.WriteBackRwa, CacheAttributes.WriteBackRwa, xs: true);

    /// <summary>Tagged Normal iWB oWB RWA non-transient (0xF0, FEAT_MTE2).</summary>
    public static MemoryAttributes NormalTagged =>
        new(MemoryType.Normal, default, CacheAttributes.WriteBackRwa, CacheAttributes.WriteBackRwa, true, true);

    /// <summary>This attribute with the tag flag set or cleared (set only takes effect on WB.RWA/WB.RWA Normal).</summary>
    public MemoryAttributes WithTagged(bool tagged) =>
        new(Type, DeviceType, Inner, Outer, tagged && IsTaggable, Xs);

    /// <summary>This attribute with another XS value.</summary>
    public MemoryAttributes WithXs(bool xs) => new(Type, DeviceType, Inner, Outer, Tagged, xs);

    public bool IsDevice => Type == MemoryType.Device;
    public bool IsNormal => Type == MemoryType.Normal;

    /// <summary>Normal with both halves write-back (any hints): the "cacheable" memory KVM needs no CMO for under FWB.</summary>
    public bool IsWriteBack => Type == MemoryType.Normal
        && Inner.Cacheability == Cacheability.WriteBack && Outer.Cacheability == Cacheability.WriteBack;

    /// <summary>Device, or Normal iNC oNC: no cache holds the data (such results are always Outer Shareable).</summary>
    public bool IsNonCacheable => Type == MemoryType.Device
        || (Inner.Cacheability == Cacheability.NonCacheable && Outer.Cacheability == Cacheability.NonCacheable);

    /// <summary>Normal with at least one cacheable half.</summary>
    public bool IsAnyCacheable => Type == MemoryType.Normal && (Inner.IsCacheable || Outer.IsCacheable);

    /// <summary>Normal iWB oWB RWA non-transient: the only attribute that can carry tags (<c>S2MemTagType</c>).</summary>
    public bool IsTaggable => Type == MemoryType.Normal
        && Inner == CacheAttributes.WriteBackRwa && Outer == CacheAttributes.WriteBackRwa;

    /// <summary>
    /// The MAIR-format byte without XS forms or tags: Device 0b0000dd00, Normal outer&lt;&lt;4 | inner.
    /// Used as a compact key; see <see cref="Mair.Encode"/> for the architectural encoding.
    /// </summary>
    public byte PlainByte => Type == MemoryType.Device
        ? (byte)((int)DeviceType << 2)
        : (byte)((Outer.ToNibble() << 4) | Inner.ToNibble());

    private static readonly string?[] DescriptionCache = new string?[512];

    /// <summary>
    /// The description used by the test vectors (docs/arm-reference.md#vectors): "Device-nGnRE", "Normal oNC iNC", "Normal oWB.RWA iWB.RWA",
    /// "Normal oWT.T.RWA iWT.T.RWA", "Normal-Tagged oWB.RWA iWB.RWA". Cached: no allocation after first use.
    /// </summary>
    public string Description
    {
        get
        {
            var key = (Tagged ? 256 : 0) | PlainByte;
            return DescriptionCache[key] ??= BuildDescription();
        }
    }

    private string BuildDescription() => Type == MemoryType.Device
        ? $"Device-{DeviceType}"
        : $"Normal{(Tagged ? "-Tagged" : "")} o{Outer} i{Inner}";

    /// <summary>Same as <see cref="Description"/>.</summary>
    public override string ToString() => Description;
}
