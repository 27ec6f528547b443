using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Kvm;

/// <summary>One guest access: an IPA, the stage-1 MAIR byte the guest maps it with, the access type, and data.</summary>
/// <param name="Ipa">Intermediate physical address.</param>
/// <param name="S1Mair">The guest's stage-1 attribute (MAIR byte) for the address, e.g. 0xFF, 0x44, 0x04.</param>
/// <param name="Type">Read, write, or instruction fetch.</param>
/// <param name="Length">Bytes to read (reads and fetches); writes use <see cref="Data"/>'s length.</param>
/// <param name="Data">Bytes to write (writes only).</param>
public readonly record struct GuestAccessRequest(ulong Ipa, byte S1Mair, S2AccessKind Type, int Length = 8, byte[]? Data = null)
{
    public static GuestAccessRequest Read(ulong ipa, byte mair, int length = 8) => new(ipa, mair, S2AccessKind.Read, length);

    public static GuestAccessRequest Write(ulong ipa, byte mair, byte[] data) => new(ipa, mair, S2AccessKind.Write, data.Length, data);

    public static GuestAccessRequest Write(ulong ipa, byte mair, ulong value) => Write(ipa, mair, BitConverter.GetBytes(value));

    public static GuestAccessRequest Exec(ulong ipa, byte mair) => new(ipa, mair, S2AccessKind.Execute, 4);

    public override string ToString() => $"{Type} IPA {Ipa:x} S1 MAIR 0x{S1Mair:X2}";
}

/// <summary>How a guest access ended.</summary>
public enum GuestAccessOutcome
{
    /// <summary>The access completed (possibly after stage-2 faults KVM handled).</summary>
    Completed,

    /// <summary>KVM_RUN returned an MMIO exit (no memslot, or a write to a read-only slot).</summary>
    MmioExit,

    /// <summary>KVM injected an abort into the guest (exec on non-cacheable memory, IPA out of range); the vCPU goes on.</summary>
    AbortInjected,

    /// <summary>KVM_RUN failed with an errno (e.g. EFAULT from the fault handler).</summary>
    RunFailed,
}

/// <summary>
/// The stage of kvm_handle_guest_abort/user_mem_abort a <see cref="Events.FaultDecided"/> reports; the Lab's
/// explanation lines reuse the names for the stages it adds (Combine, Hazard: Lab/Runner/Explainer.cs).
/// </summary>
public enum DecisionStage
{
    Memslot,
    Vma,
    Pfn,
    Design,
    MappingSize,
    Permissions,
    Stage2,
    Cmo,
    Combine,
    Exit,

    /// <summary>A hazard the Lab judged from events (the kernel records none; Lab/Runner/Explainer.cs).</summary>
    Hazard,
}

/// <summary>What one stage-2 fault did (user_mem_abort and its callers).</summary>
public sealed record FaultRecord
{
    /// <summary>Translation fault (no leaf) or permission fault (a leaf without the needed permission).</summary>
    public required bool IsPermissionFault { get; init; }

    /// <summary>0, or the errno the handler returned (EFAULT, ENOEXEC, ...).</summary>
    public Errno Error { get; init; }

    /// <summary>The stage-2 type decision, when the handler got that far.</summary>
    public Designs.Stage2TypeDecision? Decision { get; init; }

    /// <summary>The mapping size used (PAGE/PMD/PUD), 0 if nothing was mapped.</summary>
    public ulong MappingSize { get; init; }

    /// <summary>The prot given to the table.</summary>
    public KvmPgtableProt Prot { get; init; }

    /// <summary>The CMOs this mapping needed, and whether the host could do them.</summary>
    public IReadOnlyList<CacheMaintenance> Cmos { get; init; } = [];
}

/// <summary>
/// The full answer to a guest access: outcome, data, stage-2 state, effective type and the faults taken. Why each
/// fault decided what it did is reported as <see cref="Events.FaultDecided"/> events to
/// <see cref="ModelKvmSystem.Observer"/>; explanations and hazards are built from the events in the Lab
/// (Lab/Runner/Explainer.cs, Lab/Judging/Hazards.cs), not here.
/// </summary>
public sealed class GuestAccessResult
{
    private List<FaultRecord>? _faults;

    internal void AddFault(FaultRecord f) => (_faults ??= []).Add(f);

    public required GuestAccessRequest Request { get; init; }

    public GuestAccessOutcome Outcome { get; internal set; }

    /// <summary>For <see cref="GuestAccessOutcome.RunFailed"/>: the errno KVM_RUN fails with.</summary>
    public Errno RunError { get; internal set; }

    /// <summary>For <see cref="GuestAccessOutcome.MmioExit"/>: the exit.</summary>
    public KvmExit? Exit { get; internal set; }

    /// <summary>The route the data took through the host's caches (completed accesses).</summary>
    public S2Lab.Arch.Caches.AccessPath? Path { get; internal set; }

    /// <summary>Bytes read (reads and fetches that completed).</summary>
    public byte[]? Data { get; internal set; }

    /// <summary>The memslot the IPA falls in, if any.</summary>
    public Memslot? Memslot { get; internal set; }

    /// <summary>Host view: the VMA behind the slot's hva (null for guest_memfd-only slots or no VMA).</summary>
    public Mm.Vma? Vma { get; internal set; }

    /// <summary>Host physical address accessed (completed accesses).</summary>
    public ulong? HostPhysAddr { get; internal set; }

    /// <summary>The stage-2 leaf used by a completed access.</summary>
    public S2Leaf? Leaf { get; internal set; }

    /// <summary>The stage-2 faults taken on the way (usually zero or one).</summary>
    public IReadOnlyList<FaultRecord> Faults => (IReadOnlyList<FaultRecord>?)_faults ?? [];

    /// <summary>The combine of the guest's stage-1 attribute with the stage-2 MemAttr, for completed accesses.</summary>
    public EffectiveMemoryType? Effective { get; internal set; }

    /// <summary>A short one-line summary.</summary>
    public string Summary => Outcome switch
    {
        GuestAccessOutcome.Completed => $"{Request}: {Effective?.Description ?? "completed"}",
        GuestAccessOutcome.MmioExit => $"{Request}: MMIO exit",
        GuestAccessOutcome.AbortInjected => $"{Request}: abort injected into the guest",
        _ => $"{Request}: KVM_RUN fails with {RunError}",
    };

    public override string ToString() => Summary;
}

/// <summary>The effective memory type the guest gets: the PAR_EL1-style attribute byte, its description and class.</summary>
public readonly record struct EffectiveMemoryType
{
    private readonly string? _description;

    /// <param name="parAttr">The effective attribute as a MAIR-format byte (PAR_EL1.ATTR).</param>
    /// <param name="description">e.g. "Normal iWB oWB", "Device-nGnRE".</param>
    /// <param name="isDevice">Any Device type.</param>
    /// <param name="isCacheable">Normal with a cacheable (write-back or write-through) half.</param>
    public EffectiveMemoryType(byte parAttr, string description, bool isDevice, bool isCacheable)
    {
        ParAttr = parAttr;
        _description = description;
        IsDevice = isDevice;
        IsCacheable = isCacheable;
    }

    /// <summary>From the decoded attributes of the combine (the description is built only when asked for).</summary>
    public EffectiveMemoryType(byte parAttr, MemoryAttributes attributes)
    {
        ParAttr = parAttr;
        Attributes = attributes;
        IsDevice = attributes.IsDevice;
        IsCacheable = attributes.IsAnyCacheable;
    }

    /// <summary>The effective attribute as a MAIR-format byte (PAR_EL1.ATTR).</summary>
    public byte ParAttr { get; }

    /// <summary>The decoded attributes, when built from the combine.</summary>
    public MemoryAttributes? Attributes { get; }

    /// <summary>e.g. "Normal iWB oWB", "Device-nGnRE".</summary>
    public string Description => _description ?? Attributes?.Description ?? $"0x{ParAttr:X2}";

    /// <summary>Any Device type.</summary>
    public bool IsDevice { get; }

    /// <summary>Normal with at least one cacheable half.</summary>
    public bool IsCacheable { get; }

    /// <summary>Normal Non-cacheable or Device: accesses bypass the caches.</summary>
    public bool IsNonCacheable => !IsCacheable;

    /// <summary>Normal inner and outer write-back (what guest RAM should be); without decoded attributes, <see cref="IsCacheable"/>.</summary>
    public bool IsWriteBack => Attributes?.IsWriteBack ?? IsCacheable;

    public override string ToString() => $"0x{ParAttr:X2} {Description}";
}
