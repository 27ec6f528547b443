namespace S2Lab.Arch.Translation;

/// <summary>The kind of guest access being translated.</summary>
public enum S2AccessKind
{
    Read,
    Write,

    /// <summary>Instruction fetch.</summary>
    Execute,
}

/// <summary>Stage-2 fault status (the DFSC/IFSC class KVM sees in ESR_EL2).</summary>
public enum S2FaultKind
{
    None,

    /// <summary>No valid mapping at the level reported (includes a block at a level that does not allow blocks, a reserved level-3 encoding, and an IPA outside the IPA space, reported at level 0).</summary>
    Translation,

    /// <summary>The leaf has AF = 0 and hardware AF management (VTCR_EL2.HA) is off.</summary>
    AccessFlag,

    /// <summary>The leaf does not allow the access (S2AP or XN).</summary>
    Permission,

    /// <summary>An output or next-table address does not fit the output address size.</summary>
    AddressSize,
}

/// <summary>A stage-2 fault: its kind and the level of the walk that raised it.</summary>
public readonly record struct S2Fault(S2FaultKind Kind, int Level)
{
    /// <summary>The fault status code a stage-2 fault reports in ESR_ELx.{I,D}FSC (level −1 encodings included).</summary>
    public int FaultStatusCode => Kind switch
    {
        S2FaultKind.AddressSize => Level == -1 ? 0b101001 : 0b000000 | Level,
        S2FaultKind.Translation => Level == -1 ? 0b101011 : 0b000100 | Level,
        S2FaultKind.AccessFlag => 0b001000 | (Level & 3),
        S2FaultKind.Permission => 0b001100 | (Level & 3),
        _ => 0,
    };

    public override string ToString() => Kind == S2FaultKind.None ? "no fault" : $"{Kind} fault at level {Level}";
}

/// <summary>
/// The outcome of translating one IPA: either a fault, or the output address with the stage-2 leaf (MemAttr raw, SH,
/// permissions) and the level it was found at. <see cref="FromTlb"/> says whether the walk was skipped.
/// </summary>
public readonly record struct S2TranslationResult(S2Fault Fault, ulong Pa, S2Descriptor Leaf, int Level, S2Shareability Shareability, bool FromTlb)
{
    public bool IsFault => Fault.Kind != S2FaultKind.None;

    /// <summary>Raw stage-2 MemAttr[3:0] of the leaf.</summary>
    public byte MemAttr => Leaf.MemAttr;

    /// <summary>R/W/X of the leaf (X as Linux reads it, XN[1] clear).</summary>
    public S2Permissions Permissions => Leaf.Permissions;

    public override string ToString() => IsFault
        ? Fault.ToString()
        : $"PA 0x{Pa:x} (level {Level}{(FromTlb ? ", TLB hit" : "")}) MemAttr=0x{MemAttr:x} SH={Shareability} {Permissions}";
}
