namespace S2Lab.Lab.Scenarios;

/// <summary>The fields an expect step may check, per kind of step it refers to, and the words each accepts.</summary>
public static class ExpectFields
{
    /// <summary>Scorecard property names (JSON spelling), in designs.md order.</summary>
    public static readonly IReadOnlyList<string> ScorecardProperties = Scorecard.ScorecardRow.Properties.Select(p => p.Json).ToList();

    /// <summary>Start outcomes: every memslot created; the VMM refused before any KVM call; a KVM call failed.</summary>
    public static readonly IReadOnlyList<string> StartOutcomes = ["ok", "refused", "failed"];

    /// <summary>Migration outcomes (see docs/scenario-schema.md).</summary>
    public static readonly IReadOnlyList<string> MigrationOutcomes =
        ["refused", "setup-failed", "failed-after-switchover", "succeeded-same-types", "succeeded-changed-types"];

    /// <summary>Access results: the access completed, KVM_RUN failed with EFAULT, the guest took an abort, the access left KVM as an MMIO exit, or the guest was not running.</summary>
    public static readonly IReadOnlyList<string> AccessOutcomes =
        ["ok", "efault", "instruction-abort", "data-abort", "mmio-exit", "not-running"];

    /// <summary>Stage-2 memory types as KVM's prot names them.</summary>
    public static readonly IReadOnlyList<string> Stage2Types = ["normal", "normal-nc", "device-ngnre", "none"];

    /// <summary>The fields allowed for an expect step referring to a step of this kind (null = no step: run-level checks).</summary>
    public static IReadOnlyList<string> For(string? stepKind) => stepKind switch
    {
        "start" => ["outcome", "errno", "memslots", "cap243"],
        "access" => ["read", "write", "exec", "stage2", "effective", "cmo", "hazards", "value"],
        "mprotect" or "munmap" => ["result"],
        "migrate" => ["outcome", "errno", "call", "changed", "dataIntact", "deviceCopy"],
        null => ["scorecard"],
        _ => [],
    };
}
