using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>
/// A scenario step kind: how it reads, what it checks, how it runs and what can be expected of it. Registered in
/// <see cref="ScenarioKinds"/>; the loader, the runner and the expectation checker know no kind by name.
/// </summary>
internal interface IStepKind
{
    /// <summary>The action word in a scenario file ("start", "access", ...).</summary>
    string Name { get; }

    /// <summary>Reads the step body; errors name file, line and field (exit 2, nothing run). Null: the step is invalid.</summary>
    StepSpec? Read(StepReader r);

    /// <summary>Cross-checks the step against the scenario (offsets in range, devices on hosts); false drops the step.</summary>
    bool Check(StepSpec step, StepReader r);

    /// <summary>Runs the step on one run's world; null for steps that run nothing (expect).</summary>
    StepResult? Execute(StepSpec step, ScenarioRunner.RunState run);

    /// <summary>The fields an expect step may check on a result of this kind, in schema-doc order.</summary>
    IReadOnlyList<ExpectField> Expect { get; }
}

/// <summary>
/// One expectable field of a step kind. <see cref="Keyed"/> fields are maps (<c>memslots: { ram: ok }</c>) checked
/// per key as <c>NAME.KEY</c>. <see cref="Problem"/> says why an expected value is not valid (null: it is);
/// <see cref="Actual"/> reads the result (the key is null for plain fields); <see cref="Match"/> compares.
/// </summary>
internal sealed record ExpectField(
    string Name,
    IReadOnlyList<string>? Values,
    Func<StepResult, string?, string> Actual,
    Func<string, string?>? Problem = null,
    Func<string, string, bool>? Match = null,
    bool Keyed = false)
{
    /// <summary>Why <paramref name="expected"/> is not a value of this field (null when it is).</summary>
    public string? Validate(string expected) =>
        Problem is not null ? Problem(expected)
        : Values is not null && !Values.Contains(expected.ToLowerInvariant()) ? $"'{expected}' is not one of: {string.Join(", ", Values)}"
        : null;

    /// <summary>Whether the actual value satisfies the expected one (default: equal without case or outer blanks).</summary>
    public bool Matches(string expected, string actual) =>
        Match?.Invoke(expected, actual) ?? string.Equals(expected.Trim(), actual.Trim(), StringComparison.OrdinalIgnoreCase);

    /// <summary>An errno field: "ok" or "0" (a call that succeeded returns 0) or an errno name.</summary>
    public static bool ErrnoMatches(string expected, string actual) =>
        string.Equals((expected.Trim() == "0" ? "ok" : expected).Trim(), actual.Trim(), StringComparison.OrdinalIgnoreCase);

    /// <summary>A list field compared as a set ("none" is the empty set).</summary>
    public static bool SetMatches(string expected, string actual)
    {
        static HashSet<string> Set(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(x => x != "none").Select(x => x.ToLowerInvariant()).ToHashSet();
        return Set(expected).SetEquals(Set(actual));
    }

    /// <summary>A number compared by value (0x10 equals 16, 2MiB equals 0x200000).</summary>
    public static bool NumberMatches(string expected, string actual) =>
        Binder.TryParseSize(expected, out var ev) && Binder.TryParseSize(actual, out var av) && ev == av;

    /// <summary>"ok", "0" or an errno name (and, with <paramref name="allowSkipped"/>, "skipped" or "refused").</summary>
    public static bool IsErrnoOrOk(string s, bool allowSkipped) =>
        s is "ok" or "0" || (allowSkipped && s is "skipped" or "refused") ||
        (Enum.TryParse<Kernel.Kvm.Uapi.Errno>(s, ignoreCase: false, out var e) && e != Kernel.Kvm.Uapi.Errno.None && s.StartsWith('E'));

    /// <summary>The usual problem text of an errno field.</summary>
    public static string? ErrnoProblem(string s) => IsErrnoOrOk(s, allowSkipped: false) ? null : $"'{s}' is not ok or an errno name";
}

/// <summary>A step kind whose spec names the VM it acts on (the runner labels the VM's phases by it).</summary>
internal interface IVmStep
{
    string Vm { get; }
}

/// <summary>A host device kind: how it reads and what it puts on a model host.</summary>
internal interface IDeviceKind
{
    /// <summary>The <c>kind:</c> word of a device ("nvgrace-gpu", "vfio-pci").</summary>
    string Name { get; }

    /// <summary>The fields of the device mapping besides <c>kind</c> (schema-doc order).</summary>
    IReadOnlyList<string> Fields { get; }

    /// <summary>Reads the device mapping (its <c>kind</c> already read); null when invalid.</summary>
    DeviceSpec? Read(DeviceReader r);

    /// <summary>Creates the model driver on the host and offers its regions.</summary>
    void Install(DeviceSpec spec, LabHost host, RunVariant variant);
}

/// <summary>How a VM region is backed: read from its entry, then turned into the VMM's backing.</summary>
internal interface IBackingKind
{
    /// <summary>The <c>backing:</c> word of a RAM region, or "device" for device regions.</summary>
    string Name { get; }

    /// <summary>The fields this backing adds to a region entry (schema-doc order).</summary>
    IReadOnlyList<string> Fields { get; }

    /// <summary>Reads the backing's own fields of a region entry (null when invalid).</summary>
    RegionBackingSpec? Read(BackingReader r);

    /// <summary>The VMM's backing for a region of this kind.</summary>
    Vmm.RegionBacking ToConfig(VmRegionSpec region);

    /// <summary>The region's kind as reports name it, for a region whose VM is not running.</summary>
    string ReportKind(VmRegionSpec region, LabHost? lastHost);
}

/// <summary>What a step kind's reader gets: the step's place in the file, its body and the scenario read so far.</summary>
internal sealed class StepReader(ScenarioLoader.Reader scenario, Binder b, int index, string? id, SyntaxNode body, string path)
{
    public ScenarioLoader.Reader Scenario { get; } = scenario;

    public Binder B { get; } = b;

    public int Index { get; } = index;

    public string? Id { get; } = id;

    public SyntaxNode Body { get; } = body;

    public string Path { get; } = path;

    /// <summary>Where field <paramref name="name"/> of the body is written (its value), or the body's start.</summary>
    public SourceMark At(string name) =>
        Body is MappingNode m && m.Entries.FirstOrDefault(e => e.Key.Text == name) is { Key: not null } e ? e.Value.Start : Body.Start;

    /// <summary>Whether the body has field <paramref name="name"/>.</summary>
    public bool Has(string name) => Body is MappingNode m && m.Entries.Any(e => e.Key.Text == name);
}

/// <summary>What a device kind's reader gets: the device's name, its fields and the path errors name.</summary>
internal sealed record DeviceReader(Binder B, string Name, Fields F, string Path);

/// <summary>What a backing kind's reader gets: the region entry's fields and the path errors name.</summary>
internal sealed record BackingReader(Binder B, Fields F, string Path)
{
    /// <summary>The region's size, when it was read without error (backings that cut the region check against it).</summary>
    public ulong? RegionSize { get; init; }
}
