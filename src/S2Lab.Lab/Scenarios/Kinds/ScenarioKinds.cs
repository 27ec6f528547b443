namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>
/// The registry: every step, device and backing kind, in docs/scenario-schema.md order. The loader, the runner and
/// the expectation checker dispatch through it, and SchemaDocTests compares the doc with it. Adding a kind is one
/// class and one line here. Tests build their own registry (<see cref="ScenarioKinds(IEnumerable{IStepKind}, IEnumerable{IDeviceKind}, IEnumerable{IBackingKind})"/>).
/// </summary>
internal sealed class ScenarioKinds
{
    /// <summary>The kinds scenario files use.</summary>
    public static ScenarioKinds Default { get; } = new(
        [new StartStepKind(), new StopStepKind(), new AccessStepKind(), new MprotectStepKind(), new MunmapStepKind(), new RemapStepKind(), new SetFlagsStepKind(), new MigrateStepKind(), new ExpectStepKind()],
        [new NvgraceGpuDeviceKind(), new VfioPciDeviceKind()],
        [new AnonBackingKind(), new HugetlbBackingKind(), new VmasBackingKind(), new DeviceBackingKind()]);

    private readonly Dictionary<string, IStepKind> _steps;
    private readonly Dictionary<string, IDeviceKind> _devices;
    private readonly Dictionary<string, IBackingKind> _backings;

    public ScenarioKinds(IEnumerable<IStepKind> steps, IEnumerable<IDeviceKind> devices, IEnumerable<IBackingKind> backings)
    {
        Steps = steps.ToList();
        Devices = devices.ToList();
        Backings = backings.ToList();
        _steps = Steps.ToDictionary(k => k.Name, StringComparer.Ordinal);
        _devices = Devices.ToDictionary(k => k.Name, StringComparer.Ordinal);
        _backings = Backings.ToDictionary(k => k.Name, StringComparer.Ordinal);
    }

    public IReadOnlyList<IStepKind> Steps { get; }

    public IReadOnlyList<IDeviceKind> Devices { get; }

    public IReadOnlyList<IBackingKind> Backings { get; }

    /// <summary>This registry plus <paramref name="step"/> (for tests and extensions).</summary>
    public ScenarioKinds With(IStepKind step) => new(Steps.Append(step), Devices, Backings);

    public IStepKind? Step(string name) => _steps.GetValueOrDefault(name);

    public IDeviceKind? Device(string name) => _devices.GetValueOrDefault(name);

    public IBackingKind? Backing(string name) => _backings.GetValueOrDefault(name);

    /// <summary>The RAM backings (what <c>backing:</c> of a memory entry accepts): every backing but "device".</summary>
    public IEnumerable<IBackingKind> RamBackings => Backings.Where(b => b is not DeviceBackingKind);

    /// <summary>The expect field <paramref name="field"/> ("stage2", "memslots.ram") of a step kind, or null.</summary>
    public ExpectField? ExpectField(string stepKind, string field)
    {
        var fields = Step(stepKind)?.Expect ?? [];
        return fields.FirstOrDefault(f => !f.Keyed && f.Name == field)
            ?? fields.FirstOrDefault(f => f.Keyed && field.StartsWith(f.Name + ".", StringComparison.Ordinal));
    }
}
