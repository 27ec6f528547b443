namespace S2Lab.Lab.Scenarios;

/// <summary>The fields an expect step may check, per kind of step it refers to, and the words each accepts.</summary>
public static class ExpectFields
{
    /// <summary>Scorecard property names (JSON spelling), in docs/rules.md order.</summary>
    public static readonly IReadOnlyList<string> ScorecardProperties = Scorecard.ScorecardRow.Properties.Select(p => p.Json).ToList();

    /// <summary>Start outcomes: every memslot created; the VMM refused before any KVM call; a KVM call failed.</summary>
    public static readonly IReadOnlyList<string> StartOutcomes = Enum.GetValues<Vmm.StartOutcome>().Select(Runner.LabText.Start).ToList();

    /// <summary>Migration outcomes (see docs/scenario-schema.md).</summary>
    public static readonly IReadOnlyList<string> MigrationOutcomes = Words<Runner.MigrationVerdict>();

    /// <summary>
    /// Access results: the access completed, KVM_RUN failed with EFAULT, the guest took an abort, the access left KVM as
    /// an MMIO exit, the guest was not running, or KVM_RUN failed with another errno.
    /// </summary>
    public static readonly IReadOnlyList<string> AccessOutcomes = Words<Runner.AccessOutcome>();

    /// <summary>Stage-2 memory types as KVM's prot names them.</summary>
    public static readonly IReadOnlyList<string> Stage2Types = Runner.LabText.Stage2Words;

    /// <summary>Every member of an outcome enum as results and JSON write it.</summary>
    private static List<string> Words<T>()
        where T : struct, Enum => Enum.GetValues<T>().Select(v => Runner.LabText.Word(v)).ToList();

    /// <summary>The fields allowed for an expect step referring to a step of this kind (null = no step: run-level checks), from the kind registry.</summary>
    public static IReadOnlyList<string> For(string? stepKind) =>
        stepKind is null ? ["scorecard"] : Kinds.ScenarioKinds.Default.Step(stepKind)?.Expect.Select(f => f.Name).ToList() ?? [];
}
