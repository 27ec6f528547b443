using System.Runtime.CompilerServices;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

/// <summary>
/// Stage-2 permissions, with the bit values of Linux's <c>enum kvm_pgtable_prot</c> (X = BIT(0), W = BIT(1), R = BIT(2)).
/// In a descriptor, R and W are S2AP[0] and S2AP[1] and X is the absence of XN.
/// </summary>
[Flags]
public enum S2Permissions
{
    None = 0,
    Execute = 1 << 0,
    Write = 1 << 1,
    Read = 1 << 2,
    ReadWrite = Read | Write,
    ReadExecute = Read | Execute,
    All = Read | Write | Execute,
}

/// <summary>Stage-2 shareability field SH[1:0] (descriptor bits [9:8]).</summary>
public enum S2Shareability
{
    /// <summary>0b00 Non-shareable.</summary>
    NonShareable = 0b00,

    /// <summary>0b01 reserved (CONSTRAINED UNPREDICTABLE).</summary>
    Reserved = 0b01,

    /// <summary>0b10 Outer Shareable.</summary>
    OuterShareable = 0b10,

    /// <summary>0b11 Inner Shareable (what KVM writes).</summary>
    InnerShareable = 0b11,
}

/// <summary>The XN[1:0] field (bits [54:53]); with FEAT_XNX all four values, without it only XN[1] counts.</summary>
public enum S2ExecuteNever
{
    /// <summary>0b00: executable at EL1 and EL0.</summary>
    ExecuteEl1AndEl0 = 0b00,

    /// <summary>0b01: executable at EL0 only (FEAT_XNX).</summary>
    ExecuteEl0Only = 0b01,

    /// <summary>0b10: not executable.</summary>
    ExecuteNever = 0b10,

    /// <summary>0b11: executable at EL1 only (FEAT_XNX).</summary>
    ExecuteEl1Only = 0b11,
}

/// <summary>
/// One 64-bit stage-2 descriptor in the hardware layout (docs/arm-reference.md#descriptor). A thin typed view over the raw
/// value: every accessor reads or writes the bits named in <see cref="S2DescriptorBits"/>. Whether a descriptor is a
/// table, block or page depends on the level it sits at, so those tests take the level.
/// </summary>
public readonly struct S2Descriptor : IEquatable<S2Descriptor>
{
    /// <summary>The raw 64-bit value as stored in the table.</summary>
    public readonly ulong Raw;

    public S2Descriptor(ulong raw) => Raw = raw;

    /// <summary>The all-zero (invalid) descriptor.</summary>
    public static S2Descriptor Invalid => default;

    /// <summary>Bit 0.</summary>
    public bool IsValid => (Raw & B.Valid) != 0;

    /// <summary>A valid table descriptor (bits [1:0] = 11 at a level below 3).</summary>
    public bool IsTable(int level) => level < 3 && (Raw & 3) == 3;

    /// <summary>A valid block descriptor (bits [1:0] = 01 at a level below 3); whether a block is allowed at that level is a separate check.</summary>
    public bool IsBlock(int level) => level < 3 && (Raw & 3) == 1;

    /// <summary>A valid page descriptor (bits [1:0] = 11 at level 3).</summary>
    public bool IsPage(int level) => level == 3 && (Raw & 3) == 3;

    /// <summary>A valid block or page.</summary>
    public bool IsLeaf(int level) => level == 3 ? (Raw & 3) == 3 : (Raw & 3) == 1;

    /// <summary>MemAttr[3:0], bits [5:2], the raw value (its meaning depends on FWB; decoded in Attributes/).</summary>
    public byte MemAttr => (byte)((Raw & B.MemAttrMask) >> B.MemAttrShift);

    /// <summary>S2AP[1:0], bits [7:6]: bit 6 read, bit 7 write.</summary>
    public int S2Ap => (int)((Raw >> B.S2ApShift) & 3);

    /// <summary>S2AP[0]: read allowed.</summary>
    public bool Readable => (Raw & B.S2ApRead) != 0;

    /// <summary>S2AP[1]: write allowed.</summary>
    public bool Writable => (Raw & B.S2ApWrite) != 0;

    /// <summary>SH[1:0], bits [9:8] (meaningless as shareability when VTCR_EL2.DS = 1).</summary>
    public S2Shareability Shareability => (S2Shareability)((Raw & B.ShMask) >> B.ShShift);

    /// <summary>AF, bit 10.</summary>
    public bool AccessFlag => (Raw & B.Af) != 0;

    /// <summary>FnXS, bit 11.</summary>
    public bool FnXs => (Raw & B.FnXs) != 0;

    /// <summary>DBM, bit 51.</summary>
    public bool Dbm => (Raw & B.Dbm) != 0;

    /// <summary>Contiguous hint, bit 52.</summary>
    public bool Contiguous => (Raw & B.Contiguous) != 0;

    /// <summary>XN[1:0], bits [54:53].</summary>
    public S2ExecuteNever ExecuteNever => (S2ExecuteNever)((Raw & B.XnMask) >> B.XnShift);

    /// <summary>Software bits [58:55] as a 4-bit value.</summary>
    public int SoftwareBits => (int)((Raw & B.SoftwareMask) >> B.SoftwareShift);

    /// <summary>PBHA / S2PO index, bits [62:59].</summary>
    public int Pbha => (int)((Raw & B.PbhaMask) >> B.PbhaShift);

    /// <summary>AMEC, bit 63.</summary>
    public bool Amec => (Raw & B.Amec) != 0;

    /// <summary>R/W/X as Linux sees them: R = S2AP[0], W = S2AP[1], X = XN[1] clear (Linux looks at bit 54 only).</summary>
    public S2Permissions Permissions =>
        (Readable ? S2Permissions.Read : 0) | (Writable ? S2Permissions.Write : 0) | ((Raw & B.Xn1) == 0 ? S2Permissions.Execute : 0);

    /// <summary>
    /// The address field (the next table for a table descriptor, the output address for a leaf), bits [51:granule],
    /// decoded in <paramref name="format"/>. For a block the bits below the block size are not masked here; use
    /// <see cref="LeafOutputAddress"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Address(Granule granule, S2AddressFormat format)
    {
        ulong low = Raw & B.Oa47Mask & ~(granule.Bytes() - 1);
        return format switch
        {
            S2AddressFormat.Pa48 => low,
            S2AddressFormat.Lpa64K => low | (((Raw >> B.Oa51To48Lpa64KShift) & 0xF) << 48),
            _ => ((Raw & (B.Oa47Mask | B.Oa49To48Lpa2Mask)) & ~(granule.Bytes() - 1)) | (((Raw >> B.Oa51To50Lpa2Shift) & 3) << 50),
        };
    }

    /// <summary>Output address of a block or page at <paramref name="level"/>: the address field aligned to the leaf size.</summary>
    public ulong LeafOutputAddress(Granule granule, int level, S2AddressFormat format) =>
        Address(granule, format) & ~(granule.LevelSize(level) - 1);

    /// <summary>Encodes an address (aligned to the granule) into the descriptor's address field bits for <paramref name="format"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong EncodeAddress(ulong address, S2AddressFormat format) => format switch
    {
        S2AddressFormat.Pa48 => address & B.Oa47Mask,
        S2AddressFormat.Lpa64K => (address & B.Oa47Mask) | (((address >> 48) & 0xF) << B.Oa51To48Lpa64KShift),
        _ => (address & (B.Oa47Mask | B.Oa49To48Lpa2Mask)) | (((address >> 50) & 3) << B.Oa51To50Lpa2Shift),
    };

    /// <summary>The mask of descriptor bits that hold the address in <paramref name="format"/> for a granule.</summary>
    public static ulong AddressFieldMask(Granule granule, S2AddressFormat format)
    {
        ulong low = B.Oa47Mask & ~(granule.Bytes() - 1);
        return format switch
        {
            S2AddressFormat.Pa48 => low,
            S2AddressFormat.Lpa64K => low | (0xFUL << B.Oa51To48Lpa64KShift),
            _ => low | B.Oa49To48Lpa2Mask | B.ShMask,
        };
    }

    /// <summary>A table descriptor pointing at <paramref name="tablePa"/> (bits [1:0] = 11; stage-2 table descriptors carry no attributes).</summary>
    public static S2Descriptor Table(ulong tablePa, S2AddressFormat format = S2AddressFormat.Pa48) =>
        new(EncodeAddress(tablePa, format) | B.Valid | B.TableOrPage);

    /// <summary>A block (level &lt; 3) or page (level 3) with the attribute bits of <paramref name="attributes"/>.</summary>
    public static S2Descriptor Leaf(ulong outputAddress, int level, S2LeafAttributes attributes, S2AddressFormat format = S2AddressFormat.Pa48) =>
        new(EncodeAddress(outputAddress, format) | attributes.ToTemplate(format) | B.Valid | (level == 3 ? B.TableOrPage : 0));

    public S2Descriptor WithMemAttr(byte memAttr) => new((Raw & ~B.MemAttrMask) | (((ulong)memAttr & 0xF) << B.MemAttrShift));

    public S2Descriptor WithShareability(S2Shareability sh) => new((Raw & ~B.ShMask) | ((ulong)sh << B.ShShift));

    public S2Descriptor WithAccessFlag(bool af) => new(af ? Raw | B.Af : Raw & ~B.Af);

    public S2Descriptor WithFnXs(bool on) => new(on ? Raw | B.FnXs : Raw & ~B.FnXs);

    public S2Descriptor WithDbm(bool on) => new(on ? Raw | B.Dbm : Raw & ~B.Dbm);

    public S2Descriptor WithContiguous(bool on) => new(on ? Raw | B.Contiguous : Raw & ~B.Contiguous);

    public S2Descriptor WithExecuteNever(S2ExecuteNever xn) => new((Raw & ~B.XnMask) | ((ulong)xn << B.XnShift));

    public S2Descriptor WithSoftwareBits(int bits) => new((Raw & ~B.SoftwareMask) | (((ulong)bits & 0xF) << B.SoftwareShift));

    public S2Descriptor WithPbha(int bits) => new((Raw & ~B.PbhaMask) | (((ulong)bits & 0xF) << B.PbhaShift));

    public S2Descriptor WithAmec(bool on) => new(on ? Raw | B.Amec : Raw & ~B.Amec);

    /// <summary>Sets S2AP from R/W and XN[1] from X (XN[0] cleared), as Linux's stage2_set_prot_attr does.</summary>
    public S2Descriptor WithPermissions(S2Permissions perms) => new(ApplyPermissions(Raw, perms));

    /// <summary>Replaces the address field.</summary>
    public S2Descriptor WithAddress(ulong address, Granule granule, S2AddressFormat format) =>
        new((Raw & ~AddressFieldMask(granule, format)) | (EncodeAddress(address, format) & AddressFieldMask(granule, format)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong ApplyPermissions(ulong raw, S2Permissions perms)
    {
        raw &= ~(B.S2ApRead | B.S2ApWrite | B.XnMask);
        if ((perms & S2Permissions.Read) != 0)
        {
            raw |= B.S2ApRead;
        }

        if ((perms & S2Permissions.Write) != 0)
        {
            raw |= B.S2ApWrite;
        }

        if ((perms & S2Permissions.Execute) == 0)
        {
            raw |= B.Xn1;
        }

        return raw;
    }

    public bool Equals(S2Descriptor other) => Raw == other.Raw;

    public override bool Equals(object? obj) => obj is S2Descriptor d && d.Raw == Raw;

    public override int GetHashCode() => Raw.GetHashCode();

    public static bool operator ==(S2Descriptor a, S2Descriptor b) => a.Raw == b.Raw;

    public static bool operator !=(S2Descriptor a, S2Descriptor b) => a.Raw != b.Raw;

    /// <summary>Hex value plus the low type bits, e.g. <c>0x0040000040000fff</c>.</summary>
    public override string ToString() => $"0x{Raw:x16}";

    /// <summary>A readable decoding for explanations (the level decides table/block/page).</summary>
    public string Describe(int level, Granule granule = Granule.Size4K, S2AddressFormat format = S2AddressFormat.Pa48)
    {
        if (!IsValid)
        {
            return $"0x{Raw:x16} invalid";
        }

        if (IsTable(level))
        {
            return $"0x{Raw:x16} table -> 0x{Address(granule, format):x}";
        }

        if (!IsLeaf(level))
        {
            return $"0x{Raw:x16} reserved (level 3 with bit 1 clear)";
        }

        string kind = level == 3 ? "page" : "block";
        string perms = $"{(Readable ? 'R' : '-')}{(Writable ? 'W' : '-')}{((Raw & B.Xn1) == 0 ? 'X' : '-')}";
        return $"0x{Raw:x16} {kind} OA=0x{LeafOutputAddress(granule, level, format):x} MemAttr=0x{MemAttr:x} S2AP={perms} " +
               $"SH={Shareability} AF={(AccessFlag ? 1 : 0)} XN=0b{(int)ExecuteNever:b2}" +
               (Contiguous ? " Contiguous" : "") + (Dbm ? " DBM" : "") + (FnXs ? " FnXS" : "") +
               (SoftwareBits != 0 ? $" SW=0x{SoftwareBits:x}" : "");
    }
}

/// <summary>
/// The attribute half of a leaf descriptor (everything except the type bits and output address), as the caller of a
/// map operation supplies it (Linux's <c>stage2_map_data.attr</c>). MemAttr is the raw 4-bit stage-2 value.
/// </summary>
/// <param name="MemAttr">Raw MemAttr[3:0].</param>
/// <param name="Permissions">R/W/X; X clear sets XN[1] (bit 54) as Linux does.</param>
/// <param name="Shareability">SH; KVM always writes Inner Shareable. Ignored with VTCR_EL2.DS = 1.</param>
/// <param name="AccessFlag">AF; KVM sets it on every new leaf.</param>
/// <param name="FnXs">FnXS (FEAT_XS).</param>
/// <param name="SoftwareBits">Bits [58:55].</param>
/// <param name="Dbm">Dirty bit modifier.</param>
public readonly record struct S2LeafAttributes(
    byte MemAttr,
    S2Permissions Permissions,
    S2Shareability Shareability = S2Shareability.InnerShareable,
    bool AccessFlag = true,
    bool FnXs = false,
    int SoftwareBits = 0,
    bool Dbm = false)
{
    /// <summary>The attribute bits in descriptor position (no valid/type bits, no address).</summary>
    public ulong ToTemplate(S2AddressFormat format = S2AddressFormat.Pa48)
    {
        ulong raw = ((ulong)(MemAttr & 0xF) << B.MemAttrShift)
                    | (format == S2AddressFormat.Lpa2 ? 0 : (ulong)Shareability << B.ShShift)
                    | (AccessFlag ? B.Af : 0)
                    | (FnXs ? B.FnXs : 0)
                    | (((ulong)SoftwareBits & 0xF) << B.SoftwareShift)
                    | (Dbm ? B.Dbm : 0);
        return S2Descriptor.ApplyPermissions(raw, Permissions);
    }

    /// <summary>The attributes of an existing leaf descriptor (XN[0] is dropped: the template only expresses Linux's X).</summary>
    public static S2LeafAttributes FromDescriptor(S2Descriptor d) =>
        new(d.MemAttr, d.Permissions, d.Shareability, d.AccessFlag, d.FnXs, d.SoftwareBits, d.Dbm);
}
