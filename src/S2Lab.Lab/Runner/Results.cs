using System.Text.Json.Serialization;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Vmm;

namespace S2Lab.Lab.Runner;

/// <summary>How one guest access ended. JSON writes these kebab-case: ok, efault, instruction-abort, ...</summary>
public enum AccessOutcome
{
    /// <summary>The access completed.</summary>
    Ok,

    /// <summary>KVM_RUN failed with EFAULT (the fault-time death of scorecard property 2).</summary>
    Efault,

    /// <summary>KVM injected an instruction abort into the guest.</summary>
    InstructionAbort,

    /// <summary>KVM injected a data abort into the guest.</summary>
    DataAbort,

    /// <summary>The access left KVM as KVM_EXIT_MMIO.</summary>
    MmioExit,

    /// <summary>The guest was not running (never started, stopped, or failed earlier).</summary>
    NotRunning,

    /// <summary>KVM_RUN failed with an errno other than EFAULT (in <see cref="AccessRecord.Errno"/>).</summary>
    RunFailed,
}

/// <summary>How a migration ended (see docs/scenario-schema.md). JSON writes these kebab-case: setup-failed, ...</summary>
public enum MigrationVerdict
{
    /// <summary>The VMM refused before switch-over (or the VM was not running).</summary>
    Refused,

    /// <summary>A call on the destination failed before switch-over; the guest stays on the source.</summary>
    SetupFailed,

    /// <summary>The guest switched over and then failed on the destination.</summary>
    FailedAfterSwitchover,

    /// <summary>The guest runs on the destination with every memory type it had.</summary>
    SucceededSameTypes,

    /// <summary>The guest runs on the destination, but some region's memory type changed.</summary>
    SucceededChangedTypes,
}

/// <summary>How the VMM's mapping of a region looks to the kernel (the facts the fault handler samples).</summary>
/// <param name="Kind">anon, hugetlb, pfnmap or mixedmap.</param>
/// <param name="Cacheable">Rule 3 on the VMA's page protection.</param>
/// <param name="AllowAnyUncached">VM_ALLOW_ANY_UNCACHED.</param>
/// <param name="OutsideLinearMap">The pfns are not kernel map memory (no struct page, no kernel VA).</param>
/// <param name="Description">The VMA as text, e.g. "VM_PFNMAP|VM_IO, MT_NORMAL".</param>
public sealed record VmaFacts(string Kind, bool Cacheable, bool AllowAnyUncached, bool OutsideLinearMap, string Description)
{
    /// <summary>A PFNMAP/MIXEDMAP page outside the linear map: the case the debate is about (rules 8-10).</summary>
    public bool IsSpecial => Kind is "pfnmap" or "mixedmap" && OutsideLinearMap;
}

/// <summary>The CMOs a stage-2 mapping needed and whether the host could perform them.</summary>
public sealed record CmoRecord(IReadOnlyList<string> Needed, bool Possible, string Why)
{
    public static readonly CmoRecord NoneNeeded = new([], true, "");

    /// <summary>What the expect field "cmo" compares: none, possible or impossible.</summary>
    public string Summary => Needed.Count == 0 ? "none" : Possible ? "possible" : "impossible";

    /// <summary>
    /// For reports: "none", or the CMOs and what became of them: "CleanInvalidate: done" (KVM performs a needed CMO
    /// that is possible) or "...: impossible".
    /// </summary>
    [JsonIgnore]
    public string Text => Needed.Count == 0 ? "none" : $"{string.Join(", ", Needed)}: {(Possible ? "done" : "impossible")}";
}

/// <summary>A hazard the Lab judged (<see cref="Judging.Hazards"/>), with a short name (e.g. mismatched-alias) and why.</summary>
public sealed record HazardRecord(string Name, string Detail)
{
    /// <summary>For a mismatched alias: whether KVM's stage 2 or the guest's stage 1 made it non-cacheable (property 4 counts Stage2 only).</summary>
    [JsonIgnore]
    public Judging.AliasCause Cause { get; init; }
}

/// <summary>One guest access of an access step.</summary>
/// <param name="Errno">The errno KVM_RUN failed with, if it failed.</param>
/// <param name="Value">The value read (reads) or written (writes), when the access completed.</param>
public sealed record AccessRecord([property: JsonConverter(typeof(AccessWord))] S2AccessKind Type, AccessOutcome Outcome, Errno Errno, ulong? Value, string Detail)
{
    /// <summary>
    /// For a stale read (issue 12): the value the last write anyone made left there, in program order, which
    /// <see cref="Value"/> differs from. Null when the read returned it (or nothing was written to compare with).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ulong? Expected { get; init; }

    /// <summary>For a stale read: the route it took through the host's caches ("bypass", "data-cache-hit", ...).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Path { get; init; }

    /// <summary>The read returned bytes other than the last write's (<see cref="Expected"/> is set).</summary>
    [JsonIgnore]
    public bool Stale => Expected is not null;

    /// <summary>The outcome for reports: its word, and the errno after "run-failed" ("run-failed ENOMEM").</summary>
    [JsonIgnore]
    public string OutcomeText => Outcome == AccessOutcome.RunFailed ? $"{LabText.Word(Outcome)} {LabText.Errno(Errno)}" : LabText.Word(Outcome);

    /// <summary>
    /// For a stale read, the first byte that differs (little-endian, as the guest loaded it): " (stale: byte 0 read
    /// 0x00, expected 0xEF)"; otherwise empty.
    /// </summary>
    [JsonIgnore]
    public string StaleText
    {
        get
        {
            if (Expected is not { } want || Value is not { } got)
                return "";
            var i = System.Numerics.BitOperations.TrailingZeroCount(got ^ want) / 8;
            return $" (stale: byte {i} read 0x{(byte)(got >> (8 * i)):X2}, expected 0x{(byte)(want >> (8 * i)):X2})";
        }
    }

    /// <summary>"read ok", "exec instruction-abort": the access and its outcome for reports (and a stale read's bytes).</summary>
    public override string ToString() => $"{LabText.Access(Type)} {OutcomeText}{StaleText}";
}

/// <summary>The facts about one region as the guest sees it on one host: the mapping and what the accesses did.</summary>
/// <param name="Stage2">
/// The stage-2 memory type KVM chose for the page (the prot type bits of kvm_pgtable_prot), null when no mapping was
/// written; reports, expect steps and JSON write it as <see cref="LabText.Stage2"/> does (null is "none").
/// </param>
/// <param name="Stage2MemAttr">The stage-2 MemAttr written ("NORMAL (0x6)"), null when there is no mapping (JSON writes null).</param>
/// <param name="Effective">What the guest sees ("Normal-WB"), null when no access completed (JSON writes null).</param>
/// <param name="EffectiveCacheable">The guest's effective type is Normal with at least one cacheable half (WT or WB).</param>
/// <param name="EffectiveWriteBack">
/// The guest's effective type is Normal inner and outer write-back: what scorecard property 3 asks for. Not in the
/// JSON (the effective type's name, e.g. Normal-WB, says it).
/// </param>
public sealed record RegionAccessResult(
    string Vm,
    string Host,
    string Region,
    string RegionKind,
    byte Mair,
    VmaFacts? Vma,
    bool MemslotAccepted,
    IReadOnlyList<AccessRecord> Accesses,
    [property: JsonConverter(typeof(Stage2Word)), JsonIgnore(Condition = JsonIgnoreCondition.Never)] KvmS2MemType? Stage2,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Stage2MemAttr,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Effective,
    bool EffectiveCacheable,
    [property: JsonIgnore] bool EffectiveWriteBack,
    CmoRecord Cmo,
    IReadOnlyList<HazardRecord> Hazards,
    IReadOnlyList<string> Explanation)
{
    /// <summary>
    /// The VMM chose not to ask for a cacheable mapping of this cacheable device memory (a memslot-flag kernel and a
    /// VMM that prefers migratability): the run then says nothing about whether cacheable would have worked.
    /// </summary>
    public bool CacheableDeclined { get; init; }

    /// <summary>
    /// The VMM changed this region's host mapping (mprotect, munmap) after creating the memslot: a failure then is
    /// the VMM's doing, not something the host accepted.
    /// </summary>
    public bool MappingChangedByVmm { get; init; }

    /// <summary>The size of the stage-2 leaf mapping the page (expect field stage2.size; not in the JSON); null: none.</summary>
    [JsonIgnore]
    public ulong? Stage2Size { get; init; }

    /// <summary>The translation level of that leaf (1: 1GiB block, 2: 2MiB block, 3: page, with 4KiB pages); null: none.</summary>
    [JsonIgnore]
    public int? Stage2Level { get; init; }
}

/// <summary>Setting up one region on one host: the mmap, the VMM's decision and the memslot call.</summary>
/// <param name="Outcome">The VMM's outcome for the region (<see cref="RegionOutcome"/>: created, refused, failed, skipped).</param>
/// <param name="Errno">The errno of the failed call, when <see cref="Outcome"/> is <see cref="RegionOutcome.Failed"/>.</param>
public sealed record RegionSetupResult(
    string Region,
    string RegionKind,
    ulong Gpa,
    ulong Size,
    VmaFacts? Vma,
    KvmMemFlags Flags,
    [property: JsonIgnore] RegionOutcome Outcome,
    [property: JsonPropertyOrder(2)] Errno Errno,
    [property: JsonPropertyOrder(2)] string Detail)
{
    /// <summary>
    /// The outcome as one word, as JSON ("outcome"), expect steps (memslots.REGION) and reports write it: ok,
    /// refused, skipped, or the errno name of the failed call (EINVAL, ...).
    /// </summary>
    [JsonPropertyName("outcome")]
    [JsonPropertyOrder(1)]
    public string Text => LabText.Region(Outcome, Errno);

    /// <summary>
    /// For a failed memslot: why the VMM's own request made KVM refuse it in every design, whatever the memory type
    /// (<see cref="Judging.VmmRequests.RefusalCause"/>: MTE, or dirty logging of a VM_PFNMAP VMA); null otherwise.
    /// Scorecard property 3 does not count such a refusal. Not in the JSON.
    /// </summary>
    [JsonIgnore]
    public string? RefusedForVmmRequest { get; init; }
}

/// <summary>The result of one step.</summary>
public abstract record StepResult(int Index, string Label)
{
    public abstract string Kind { get; }

    /// <summary>The lifetime of the step's VM it belongs to: 1 from the VM's first start step, 2 from its second, ...; 0 before any start.</summary>
    public int Run { get; init; }

    /// <summary>
    /// The phase as reports name it, one per start or migration: "run 3: grace -> altra (trust-kernel) [grace-to-altra]"
    /// (the VM's name first when the scenario has several; the step id in brackets when it has one). Other steps
    /// carry the phase they happen in.
    /// </summary>
    public string Phase { get; init; } = "";

    /// <summary>One line for reports.</summary>
    public abstract string Summary { get; }
}

/// <summary>A VM start: the capability the VMM saw, each region's memslot outcome.</summary>
public sealed record StartResult(
    int Index, string Label, string Vm, string Host,
    [property: JsonConverter(typeof(StartOutcomeWord))] Vmm.StartOutcome Outcome, string Reason, Errno Errno, string Cap243, IReadOnlyList<RegionSetupResult> Regions)
    : StepResult(Index, Label)
{
    public override string Kind => "start";

    /// <summary>Capability 243 asked on the system fd (/dev/kvm) before the VM was created (expect field cap243.sys; not in the JSON).</summary>
    [JsonIgnore]
    public string Cap243Sys { get; init; } = "";

    public override string Summary => Outcome == Vmm.StartOutcome.Started ? $"{Vm} started on {Host}" : $"{Vm} on {Host}: {LabText.Start(Outcome)}: {Reason}";
}

/// <summary>Writes a start outcome as reports and expect steps name it (<see cref="LabText.Start"/>).</summary>
public sealed class StartOutcomeWord : JsonConverter<Vmm.StartOutcome>
{
    public override Vmm.StartOutcome Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        var word = reader.GetString();
        foreach (var o in Enum.GetValues<Vmm.StartOutcome>())
        {
            if (LabText.Start(o) == word)
                return o;
        }

        throw new System.Text.Json.JsonException($"unknown start outcome '{word}'");
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, Vmm.StartOutcome value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(LabText.Start(value));
}

/// <summary>JSON for a stage-2 type: the words of <see cref="LabText.Stage2"/> ("none" for null, no mapping).</summary>
public sealed class Stage2Word : JsonConverter<KvmS2MemType?>
{
    public override bool HandleNull => true;

    public override KvmS2MemType? Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetString() is { } word && LabText.TryParseStage2(word, out var type)
            ? type
            : throw new System.Text.Json.JsonException($"unknown stage-2 type '{reader.GetString()}'");

    public override void Write(System.Text.Json.Utf8JsonWriter writer, KvmS2MemType? value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(LabText.Stage2(value));
}

/// <summary>JSON for an access kind: the scenario words of <see cref="LabText.Access"/> (read, write, exec).</summary>
public sealed class AccessWord : JsonConverter<S2AccessKind>
{
    public override S2AccessKind Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        reader.GetString() is { } word && LabText.AccessWords.TryGetValue(word, out var kind)
            ? kind
            : throw new System.Text.Json.JsonException($"unknown access type '{reader.GetString()}'");

    public override void Write(System.Text.Json.Utf8JsonWriter writer, S2AccessKind value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(LabText.Access(value));
}

/// <summary>A VM stop.</summary>
public sealed record StopResult(int Index, string Label, string Vm, string Outcome) : StepResult(Index, Label)
{
    public override string Kind => "stop";

    public override string Summary => $"{Vm}: {Outcome}";
}

/// <summary>Guest accesses to one region.</summary>
public sealed record AccessResult(int Index, string Label, RegionAccessResult Region) : StepResult(Index, Label)
{
    public override string Kind => "access";

    public override string Summary =>
        $"{Region.Region} on {Region.Host}: {string.Join(", ", Region.Accesses)}; " +
        $"stage 2 {Region.Stage2MemAttr ?? LabText.None}, guest sees {Region.Effective ?? LabText.None}";
}

/// <summary>An mprotect or munmap by the VMM.</summary>
public sealed record RangeResult(int Index, string Label, string Operation, string Vm, string Region, Errno Errno, string Detail) : StepResult(Index, Label)
{
    public override string Kind => Operation;

    public override string Summary => $"{Operation} {Region}: {LabText.Errno(Errno)}{(Detail.Length > 0 ? $" ({Detail})" : "")}";
}

/// <summary>How a device region's contents moved (or why they did not); for RAM, a copy observed stale (<see cref="MigrateResult.RamCopies"/>).</summary>
public sealed record DeviceCopyRecord(string Region, string How, ulong Bytes, IReadOnlyList<HazardRecord> Hazards)
{
    /// <summary>
    /// For a stale copy observed (<see cref="Judging.Hazards.StaleCopy"/>): the offset in the region of the first word
    /// that arrived other than the last write on the source. Null when every word the guest wrote arrived.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ulong? StaleOffset { get; init; }

    /// <summary>For a stale copy observed: what the destination VMM's mapping holds at <see cref="StaleOffset"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ulong? Copied { get; init; }

    /// <summary>For a stale copy observed: the last write on the source at <see cref="StaleOffset"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ulong? Expected { get; init; }

    /// <summary>
    /// For reports: the hazards' names, and for a stale copy observed its first differing byte, as a stale read shows
    /// it ("stale-copy (+0x0 byte 0 copied 0x11, expected 0x22)").
    /// </summary>
    [JsonIgnore]
    public string HazardText
    {
        get
        {
            var names = string.Join(", ", Hazards.Select(h => h.Name));
            if (StaleOffset is not { } off || Copied is not { } got || Expected is not { } want)
                return names;
            var i = System.Numerics.BitOperations.TrailingZeroCount(got ^ want) / 8;
            return $"{names} (+0x{off:x} byte {i} copied 0x{(byte)(got >> (8 * i)):X2}, expected 0x{(byte)(want >> (8 * i)):X2})";
        }
    }
}

/// <summary>A memory-type change of a region across a migration.</summary>
public sealed record TypeChange(string Region, string Before, string After);

/// <summary>A migration: checks, setup, pre-copy, stop-and-copy, switch-over and what the guest saw afterwards.</summary>
/// <param name="Rounds">
/// The VMM's pre-copy rounds as it reported them (round 0: stop-and-copy): pages sent with data, never-populated pages
/// sent as zero-page markers (mincore says not resident), and pages the dirty log reported afterwards.
/// </param>
public sealed record MigrateResult(
    int Index,
    string Label,
    string Vm,
    string From,
    string To,
    string Policy,
    MigrationVerdict Outcome,
    string Reason,
    string FailedCall,
    Errno Errno,
    IReadOnlyList<RegionSetupResult> DestinationRegions,
    IReadOnlyList<Vmm.PrecopyRoundReport> Rounds,
    IReadOnlyList<DeviceCopyRecord> DeviceCopies,
    IReadOnlyList<RegionAccessResult> AfterSwitchover,
    IReadOnlyList<TypeChange> Changes,
    bool? DataIntact,
    string DataCheck)
    : StepResult(Index, Label)
{
    public override string Kind => "migrate";

    public override string Summary =>
        $"{Vm} {From} -> {To} ({Policy}): {LabText.Word(Outcome)}{(Reason.Length > 0 ? $": {Reason}" : "")}{(FailedCall.Length > 0 ? $" [{FailedCallText}]" : "")}";

    /// <summary>The call that failed and its errno ("KVM_SET_USER_MEMORY_REGION2 slot 2 (gpu0.usemem): EINVAL"); empty when none did.</summary>
    [JsonIgnore]
    public string FailedCallText => FailedCall.Length > 0 ? $"{FailedCall}: {LabText.Errno(Errno)}" : "";

    /// <summary>The RAM pre-copy for reports: "r1: 3 sent, 65024 zero, 16 dirtied; ...; stop-and-copy: 16 sent".</summary>
    [JsonIgnore]
    public string PrecopyText => string.Join("; ", Rounds.Select(r =>
        (r.Round == 0 ? $"stop-and-copy: {r.PagesSent} sent" : $"r{r.Round}: {r.PagesSent} sent") +
        (r.ZeroPages > 0 ? $", {r.ZeroPages} zero" : "") + (r.Round == 0 ? "" : $", {r.PagesDirtied} dirtied")));

    /// <summary>
    /// RAM regions whose copy (pre-copy and stop-and-copy, through the VMM's cacheable mapping) was observed stale: a
    /// word arrived other than the source's last write (<see cref="Judging.Hazards.StaleCopy"/>). Null when none was.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<DeviceCopyRecord>? RamCopies { get; init; }

    /// <summary>
    /// Where <see cref="DataIntact"/> is false: the first word the guest found wrong on the destination (its first read
    /// there, before it wrote again), and the last value written there on the source. Null when the data is intact.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public LostWord? Lost { get; init; }

    /// <summary>
    /// For reports: "data intact", or "data CORRUPTED" with the first differing byte, as a stale read and a stale copy
    /// show it ("data CORRUPTED (gpu0.usemem+0x0 byte 0 read 0x16, expected 0x1B)"); empty when nothing was checked.
    /// </summary>
    [JsonIgnore]
    public string DataText => DataIntact switch
    {
        null => "",
        true => "data intact",
        false when Lost is { Read: { } got } l => $"data CORRUPTED ({l.Region}+0x{l.Offset:x} {LostWord.ByteText(got, l.Expected)})",
        false when Lost is { } l => $"data CORRUPTED ({l.Region}+0x{l.Offset:x} not read back)",
        false => "data CORRUPTED",
    };

    /// <summary>Whether the guest ran on the destination (the switch-over happened).</summary>
    public bool SwitchedOver => Outcome is MigrationVerdict.FailedAfterSwitchover or MigrationVerdict.SucceededSameTypes or MigrationVerdict.SucceededChangedTypes;
}

/// <summary>
/// A word a migration lost: at <paramref name="Offset"/> of <paramref name="Region"/> the guest's first read on the
/// destination returned <paramref name="Read"/> (null: the read returned no value) where the last write on the source left
/// <paramref name="Expected"/>.
/// </summary>
public sealed record LostWord(string Region, ulong Offset, ulong? Read, ulong Expected)
{
    /// <summary>The first differing byte (little-endian, as the guest loaded it): "byte 0 read 0x16, expected 0x1B".</summary>
    public static string ByteText(ulong got, ulong want)
    {
        var i = System.Numerics.BitOperations.TrailingZeroCount(got ^ want) / 8;
        return $"byte {i} read 0x{(byte)(got >> (8 * i)):X2}, expected 0x{(byte)(want >> (8 * i)):X2}";
    }
}

/// <summary>An expect step that was checked: each field, expected versus actual.</summary>
public sealed record ExpectationResult(int StepIndex, string StepLabel, string Field, string Expected, string Actual, bool Passed, Scenarios.SourceMark At);

/// <summary>What the runner learned about a host before any VM ran on it.</summary>
/// <param name="Cap243Vm">KVM_CHECK_EXTENSION(243) on a VM fd: "0", "1" or an errno name ("no VM (...)" if KVM_CREATE_VM failed).</param>
/// <param name="Cap243System">The same on the /dev/kvm fd.</param>
/// <param name="UnknownCapSystem">An unknown capability's answer on the system fd, to tell "unknown" from "known".</param>
/// <param name="UnknownCapVm">An unknown capability's answer on a VM fd.</param>
public sealed record HostFacts(
    string Name, string Cpu, string CpuSource, bool Fwb, bool Dic, bool Idc, string Design, string Cap243Vm, string Cap243System, string UnknownCapSystem, string UnknownCapVm)
{
    public bool SupportsCacheablePfnmap => Fwb && Dic;

    /// <summary>Whether capability 243 answers differently from a capability the kernel does not know, on either fd.</summary>
    public bool CapabilityRecognized => Cap243Vm != UnknownCapVm || Cap243System != UnknownCapSystem;

    /// <summary>"grace: neoverse-v2 (preset), FWB yes, DIC yes; KVM_CHECK_EXTENSION(243): VM fd 1, /dev/kvm EINVAL".</summary>
    public override string ToString() =>
        $"{Name}: {Cpu} ({CpuSource}), FWB {(Fwb ? "yes" : "no")}, DIC {(Dic ? "yes" : "no")}; KVM_CHECK_EXTENSION(243): VM fd {Cap243Vm}, /dev/kvm {Cap243System}";
}

/// <summary>One run of a scenario under one design and variant.</summary>
public sealed record RunResult(
    string Scenario,
    string Design,
    string Variant,
    IReadOnlyList<HostFacts> Hosts,
    IReadOnlyList<StepResult> Steps,
    IReadOnlyList<ExpectationResult> Expectations,
    Scorecard.ScorecardRow Scorecard)
{
    public bool ExpectationsPassed => Expectations.All(e => e.Passed);

    /// <summary>"design" or "design [variant]", as reports head the run.</summary>
    public string Name => Scorecard.Name;
}
