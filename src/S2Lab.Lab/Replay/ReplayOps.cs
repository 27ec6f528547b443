using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>One operation of a memslot replay file, with the 1-based line it came from and an optional expected result.</summary>
public abstract record ReplayOp(int Line)
{
    /// <summary>The result a golden file expects ("expect" field), or null when the line has none.</summary>
    public Errno? Expected { get; init; }

    /// <summary>cap lines: the value KVM_CHECK_EXTENSION returned ("value" field), or null.</summary>
    public long? ExpectedValue { get; init; }

    /// <summary>access lines: how KVM_RUN came back ("exit": done, mmio or abort), or null.</summary>
    public string? ExpectedExit { get; init; }

    /// <summary>access lines: the stage-2 leaf's level and attribute bits after the access ("leaf"), or null.</summary>
    public string? ExpectedLeaf { get; init; }

    /// <summary>The line's "op" value, as the file spells it.</summary>
    public string OpName => this switch
    {
        CreateVmOp => "create_vm",
        CreateGmemOp => "create_gmem",
        SetRegionOp => "set",
        CapOp => "cap",
        MmapOp => "mmap",
        MunmapOp => "munmap",
        VcpuOp => "vcpu",
        AccessOp => "access",
        EnableCapOp => "enable_cap",
        _ => throw new InvalidOperationException($"no op name for {GetType().Name}"),
    };
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

/// <summary><c>{"op":"cap","fd":"sys"|"vm","cap":N}</c>: KVM_CHECK_EXTENSION on /dev/kvm or on the newest VM.</summary>
public sealed record CapOp(int Line, bool OnVmFd, uint Cap) : ReplayOp(Line);

/// <summary>
/// The kinds of user mapping an <see cref="MmapOp"/> creates (oracle/arm64/README.md): anonymous memory, read-write or
/// read-only, and the oracle module's mappings of RAM outside the kernel's linear map.
/// </summary>
public enum ReplayVmaKind
{
    /// <summary>MAP_PRIVATE|MAP_ANONYMOUS, read-write.</summary>
    Anon,

    /// <summary>Anonymous, populated and then mprotect()ed to PROT_READ.</summary>
    AnonRo,

    /// <summary>remap_pfn_range with the default pgprot (MT_NORMAL): cacheable VM_PFNMAP, like nvgrace-gpu usemem.</summary>
    PfnmapWb,

    /// <summary>remap_pfn_range, pgprot_writecombine (MT_NORMAL_NC) and VM_ALLOW_ANY_UNCACHED, like nvgrace-gpu resmem.</summary>
    PfnmapWcAny,

    /// <summary>remap_pfn_range, pgprot_noncached (MT_DEVICE_nGnRnE).</summary>
    PfnmapNc,

    /// <summary>remap_pfn_range, pgprot_writecombine without VM_ALLOW_ANY_UNCACHED.</summary>
    PfnmapWc,

    /// <summary>VM_MIXEDMAP|VM_IO, cacheable, pages inserted by vmf_insert_mixed() on fault.</summary>
    MixedmapIoWb,

    /// <summary>VM_MIXEDMAP without VM_IO, cacheable, vmf_insert_mixed().</summary>
    MixedmapWb,
}

/// <summary>
/// <c>{"op":"mmap","kind":K,"uaddr":A,"size":N,"offset":O}</c>: a MAP_FIXED mapping of kind K at A in the VMM's
/// address space; O is the byte offset into the carved RAM for the module's kinds.
/// </summary>
public sealed record MmapOp(int Line, ReplayVmaKind Kind, ulong UserspaceAddr, ulong Size, ulong Offset = 0) : ReplayOp(Line);

/// <summary><c>{"op":"munmap","uaddr":A,"size":N}</c>: munmap(2) in the VMM's address space.</summary>
public sealed record MunmapOp(int Line, ulong UserspaceAddr, ulong Size) : ReplayOp(Line);

/// <summary>
/// <c>{"op":"vcpu","slot":S,"gpa":G,"uaddr":U}</c>: one page of anonymous guest code at U, memslot S mapping it at G,
/// and vCPU 0 of the newest VM. Later access lines run on this vCPU.
/// </summary>
public sealed record VcpuOp(int Line, uint Slot, ulong GuestPhysAddr, ulong UserspaceAddr) : ReplayOp(Line);

/// <summary>
/// <c>{"op":"access","kind":"read"|"write"|"exec","gpa":G}</c>: the guest does one 8-byte load, store or an
/// instruction fetch at G (stage 1 off), then KVM_RUN returns.
/// </summary>
public sealed record AccessOp(int Line, S2AccessKind Kind, ulong GuestPhysAddr) : ReplayOp(Line);

/// <summary><c>{"op":"enable_cap","cap":N}</c>: KVM_ENABLE_CAP on the newest VM (the model knows KVM_CAP_ARM_MTE, 205).</summary>
public sealed record EnableCapOp(int Line, uint Cap) : ReplayOp(Line);

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

/// <summary>
/// The result of one executed operation: the errno, and for cap lines the value, for access lines the exit and the
/// stage-2 leaf (null where the backend does not report one), and why a backend could not run the line (a loader's
/// refusal, a mapping kind it has no driver for), or null.
/// </summary>
public readonly record struct ReplayStep(ReplayOp Op, Errno Result, long? Value = null, string? Exit = null, string? Leaf = null,
    string? Note = null)
{
    /// <summary>True when every expectation the line has (errno, value, exit, leaf) equals the result.</summary>
    public bool MatchesExpectation =>
        (Op.Expected is not { } e || e == Result) &&
        (Op.ExpectedValue is not { } v || v == Value) &&
        (Op.ExpectedExit is not { } x || x == Exit) &&
        (Op.ExpectedLeaf is not { } l || l == Leaf);
}

/// <summary>The names replay files use for <see cref="ReplayVmaKind"/> and <see cref="S2AccessKind"/>.</summary>
public static class ReplayNames
{
    private static readonly string[] VmaKindNames =
        ["anon", "anon_ro", "pfnmap_wb", "pfnmap_wc_any", "pfnmap_nc", "pfnmap_wc", "mixedmap_io_wb", "mixedmap_wb"];

    private static readonly string[] AccessNames = ["read", "write", "exec"];

    /// <summary>The exits an access line can expect: the guest's access completed, an MMIO exit at it, an abort injected.</summary>
    public static IReadOnlyList<string> Exits { get; } = ["done", "mmio", "abort"];

    public static IReadOnlyList<string> VmaKinds => VmaKindNames;

    public static IReadOnlyList<string> AccessKinds => AccessNames;

    public static string Name(ReplayVmaKind kind) => VmaKindNames[(int)kind];

    public static string Name(S2AccessKind type) => AccessNames[(int)type];

    public static bool TryParseVmaKind(string text, out ReplayVmaKind kind)
    {
        var i = Array.IndexOf(VmaKindNames, text);
        kind = (ReplayVmaKind)Math.Max(i, 0);
        return i >= 0;
    }

    public static bool TryParseAccess(string text, out S2AccessKind type)
    {
        var i = Array.IndexOf(AccessNames, text);
        type = (S2AccessKind)Math.Max(i, 0);
        return i >= 0;
    }
}
