using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>One operation of a memslot replay file, with the 1-based line it came from and an optional expected result.</summary>
public abstract record ReplayOp(int Line)
{
    /// <summary>The result a golden file expects ("expect" field), or null when the line has none.</summary>
    public Errno? Expected { get; init; }
}

/// <summary><c>{"op":"create_vm"}</c>: KVM_CREATE_VM (optional "type", default 0); later operations act on this VM.</summary>
public sealed record CreateVmOp(int Line, ulong Type = 0) : ReplayOp(Line);

/// <summary><c>{"op":"create_gmem","size":N,"flags":N}</c>: KVM_CREATE_GUEST_MEMFD on the newest VM. Each one is a handle index, failed or not.</summary>
public sealed record CreateGmemOp(int Line, ulong Size, ulong Flags) : ReplayOp(Line);

/// <summary>
/// <c>{"op":"set","v":1|2,...}</c>: KVM_SET_USER_MEMORY_REGION (v 1) or ..._REGION2 (v 2) on the newest VM.
/// <see cref="Gmem"/> is the 0-based index of an earlier create_gmem, or -1 (also the meaning when absent): a
/// descriptor that is not open.
/// </summary>
public sealed record SetRegionOp(int Line, int Version, uint Slot, uint Flags, ulong GuestPhysAddr, ulong MemorySize, ulong UserspaceAddr,
    int Gmem = -1, ulong GmemOffset = 0) : ReplayOp(Line);

/// <summary>A parsed replay file.</summary>
public sealed record ReplayFile(string Name, IReadOnlyList<ReplayOp> Ops)
{
    /// <summary>Whether any line carries an expected result.</summary>
    public bool HasExpectations => Ops.Any(o => o.Expected is not null);
}

/// <summary>A malformed replay line: the file, the 1-based line, the offending field (if one), and what is wrong.</summary>
public sealed record ReplayError(string File, int Line, string? Field, string Message)
{
    public override string ToString() =>
        Line <= 0 ? $"{File}: {Message}" : Field is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: field '{Field}': {Message}";
}

/// <summary>The result of one executed operation.</summary>
public readonly record struct ReplayStep(ReplayOp Op, Errno Result)
{
    /// <summary>True when the line has no expectation or the result equals it.</summary>
    public bool MatchesExpectation => Op.Expected is not { } e || e == Result;
}
