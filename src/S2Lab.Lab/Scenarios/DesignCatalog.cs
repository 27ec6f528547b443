using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios;

/// <summary>A way to run a design: a label ("" for the design as configured) and what it changes.</summary>
/// <param name="Label">The variant text in reports: "", "param=on", "flag=prefer-cacheable", or a scenario variant's name.</param>
/// <param name="DesignParameters">Design parameters set on every host.</param>
/// <param name="MemslotFlag">The memslot-flag choice forced on every VM's VMM, if any.</param>
/// <param name="UsememMapping">Per device name: how usemem is mapped (scenario variants).</param>
public sealed record RunVariant(
    string Label,
    IReadOnlyDictionary<string, string> DesignParameters,
    MemslotFlagChoice? MemslotFlag,
    IReadOnlyDictionary<string, DeviceMapping> UsememMapping)
{
    public static readonly RunVariant Default = new("", new Dictionary<string, string>(), null, new Dictionary<string, DeviceMapping>());
}

/// <summary>
/// What the Lab knows about exploring each design: its parameters and the variants <c>--design all</c> runs. All of it
/// comes from the kernel model's design registry (<see cref="KvmDesigns"/>): the designs, the argument values each
/// declares, and whether its uAPI has the memslot flag. A new design class shows up here without a change.
/// </summary>
public static class DesignCatalog
{
    /// <summary>The scenario-file name of a design's argument (<c>params: { param: on }</c>).</summary>
    public const string ParameterName = "param";

    /// <summary>Names of every design the kernel model implements, in its order.</summary>
    public static IReadOnlyList<string> Designs { get; } = KvmDesigns.Names.ToList();

    public static bool IsKnown(string name) => Designs.Contains(name, StringComparer.Ordinal);

    /// <summary>The parameters a design accepts and their allowed values (its registry arguments, under <see cref="ParameterName"/>).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ParametersOf(string design) =>
        KvmDesigns.All.FirstOrDefault(e => e.Name == design) is { Arguments.Count: > 0 } entry
            ? new Dictionary<string, IReadOnlyList<string>> { [ParameterName] = entry.Arguments }
            : new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>
    /// Checks a <c>--design</c> value: null, "all", a design name, or NAME=VALUE naming one of its variants
    /// (proposal-module-param=on). Returns an error message, or null when the value is fine.
    /// </summary>
    public static string? CheckRunDesign(string? design)
    {
        if (design is null or "all")
            return null;
        var eq = design.IndexOf('=', StringComparison.Ordinal);
        var name = eq < 0 ? design : design[..eq];
        if (!IsKnown(name))
            return $"unknown design '{name}'; known designs: all, {string.Join(", ", Designs)}";
        if (eq < 0)
            return null;
        var value = design[(eq + 1)..];
        var variants = VariantsOf(name).Where(v => v.Label.Length > 0).ToList();
        return variants.Any(v => v.Label.EndsWith("=" + value, StringComparison.Ordinal))
            ? null
            : variants.Count == 0
                ? $"design '{name}' has no variants"
                : $"design '{name}' has no variant '{value}'; its variants: {string.Join(", ", variants.Select(v => v.Label[(v.Label.IndexOf('=', StringComparison.Ordinal) + 1)..]))}";
    }

    /// <summary>The variants <c>--design all</c> runs for a design (before scenario-defined variants).</summary>
    public static IReadOnlyList<RunVariant> VariantsOf(string design)
    {
        var empty = new Dictionary<string, DeviceMapping>();
        // A design whose uAPI has KVM_MEM_ENABLE_CACHEABLE_PFNMAP is explored with both VMM choices of the flag.
        if (IsKnown(design) && LabHost.HasCacheableFlag(KvmDesigns.Create(design)))
        {
            return
            [
                new("flag=prefer-cacheable", new Dictionary<string, string>(), MemslotFlagChoice.PreferCacheable, empty),
                new("flag=prefer-migratable", new Dictionary<string, string>(), MemslotFlagChoice.PreferMigratable, empty),
            ];
        }

        var ps = ParametersOf(design);
        if (ps.Count == 0)
            return [RunVariant.Default];
        // One variant per value of the (single) parameter; designs with several parameters get their cross product.
        IEnumerable<Dictionary<string, string>> combos = [new Dictionary<string, string>()];
        foreach (var (name, values) in ps)
            combos = combos.SelectMany(c => values.Select(v => new Dictionary<string, string>(c) { [name] = v }));
        return combos.Select(c => new RunVariant(string.Join(",", c.Select(kv => $"{kv.Key}={kv.Value}")), c, null, empty)).ToList();
    }
}
