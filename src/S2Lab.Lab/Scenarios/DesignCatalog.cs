using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scenarios;

/// <summary>A way to run a design: a label ("" for the design as configured) and what it changes.</summary>
/// <param name="Label">The variant text in reports: "", "param=on", "flag=prefer-cacheable", or a scenario variant's name.</param>
/// <param name="DesignArgument">The design's argument (<see cref="DesignRef.Argument"/>) set on every host, if any.</param>
/// <param name="MemslotFlag">The memslot-flag choice forced on every VM's VMM, if any.</param>
/// <param name="UsememMapping">Per device name: how usemem is mapped (scenario variants).</param>
public sealed record RunVariant(
    string Label,
    string? DesignArgument,
    CacheableFlagChoice? MemslotFlag,
    IReadOnlyDictionary<string, NvGraceUsememMapping> UsememMapping)
{
    public static readonly RunVariant Default = new("", null, null, new Dictionary<string, NvGraceUsememMapping>());
}

/// <summary>
/// A parsed design choice. <see cref="Design"/> null means every design; otherwise it is the kernel model's design one
/// run of the choice runs: its argument at its default, or the variant's (<c>proposal-module-param:param=on</c> is
/// <c>proposal-module-param=on</c>). <see cref="Variant"/> null means every variant of it (run, demo) or the design as
/// configured (explain, replay).
/// </summary>
public sealed record DesignChoice(DesignRef? Design, string? Variant)
{
    public static readonly DesignChoice All = new(null, null);

    public override string ToString() => Design is not { Name: var name } ? "all" : Variant is null ? name : $"{name}{DesignCatalog.VariantSeparator}{Variant}";
}

/// <summary>
/// What the Lab knows about exploring each design: its parameters and the variants <c>--design all</c> runs. All of it
/// comes from the kernel model's design registry (<see cref="KvmDesigns"/>): the designs, the argument values each
/// declares, and the memslot flags its uAPI declares. A new design class shows up here without a change.
/// </summary>
public static class DesignCatalog
{
    /// <summary>The scenario-file name of a design's argument (<c>params: { param: on }</c>).</summary>
    public const string ParameterName = "param";

    /// <summary>Names of every design the kernel model implements, in its order (<see cref="KvmDesigns.Names"/>).</summary>
    public static IReadOnlyList<string> Designs => [.. KvmDesigns.Names];

    public static bool IsKnown(string name) => KvmDesigns.All.Any(e => string.Equals(e.Name, name, StringComparison.Ordinal));

    /// <summary>The parameters a design accepts and their allowed values (its registry arguments, under <see cref="ParameterName"/>).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ParametersOf(string design) =>
        KvmDesigns.All.FirstOrDefault(e => e.Name == design) is { Arguments.Count: > 0 } entry
            ? new Dictionary<string, IReadOnlyList<string>> { [ParameterName] = entry.Arguments }
            : new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>
    /// A design as configured by default: its argument "off" where the argument is a switch, else its first declared
    /// value; no argument where it declares none.
    /// </summary>
    public static DesignRef DefaultRef(string design) =>
        new(design, ParametersOf(design).TryGetValue(ParameterName, out var values) ? DefaultArgument(values) : null);

    /// <summary>The default of a declared argument: "off" where it is a switch, else its first value.</summary>
    public static string DefaultArgument(IReadOnlyList<string> values) => values.Contains("off") ? "off" : values[0];

    /// <summary>What separates a design from its variant in a design choice: <c>proposal-module-param:param=on</c>.</summary>
    public const char VariantSeparator = ':';

    /// <summary>
    /// The variants explain knows besides the designs' own: the nvgrace-gpu usemem mapping, as the demo scenario
    /// defines it (<c>usemem=mixedmap</c>: VM_MIXEDMAP|VM_IO instead of VM_PFNMAP|VM_IO). Keyed by the explained GPU, gpu0.
    /// </summary>
    public static IReadOnlyList<VariantSpec> ExplainVariants { get; } =
        [new("usemem=mixedmap", [], new Dictionary<string, NvGraceUsememMapping> { ["gpu0"] = NvGraceUsememMapping.Mixedmap })];

    /// <summary>
    /// Every variant of <paramref name="design"/>: its own (<see cref="VariantsOf"/>), then the
    /// <paramref name="extra"/> variants (a scenario's, or explain's) whose designs include it.
    /// </summary>
    public static IReadOnlyList<RunVariant> VariantsFor(string design, IEnumerable<VariantSpec> extra) =>
        [.. VariantsOf(design),
         .. extra.Where(v => v.Designs.Count == 0 || v.Designs.Contains(design))
                 .Select(v => new RunVariant(v.Name, null, null, v.UsememMapping))];

    /// <summary>
    /// Parses a design choice, the one spelling that <c>demo</c>, <c>run</c>, <c>explain</c> and <c>memslots replay</c>
    /// accept: <c>DESIGN</c> (every variant of it, or the design as configured), or <c>DESIGN:VARIANT</c> with VARIANT
    /// written as reports name it (<c>proposal-module-param:param=on</c>,
    /// <c>proposal-memslot-flag:flag=prefer-migratable</c>, <c>linux-6.17:usemem=mixedmap</c>), or <c>all</c> when
    /// <paramref name="allowAll"/>. The variants are the design's declared ones and the <paramref name="extra"/> ones;
    /// null with an error listing the valid names otherwise.
    /// </summary>
    public static DesignChoice? ParseChoice(string text, IEnumerable<VariantSpec> extra, bool allowAll, out string? error)
    {
        error = null;
        text = text.Trim();
        if (allowAll && text == "all")
            return DesignChoice.All;
        var colon = text.IndexOf(VariantSeparator, StringComparison.Ordinal);
        var name = colon < 0 ? text : text[..colon];
        var known = (allowAll ? "all, " : "") + string.Join(", ", Designs);
        if (!IsKnown(name))
        {
            // The spelling of earlier versions (proposal-module-param=on) gets a pointer to this one.
            error = DesignRef.TryParse(name, out var old, out _) && old.Argument is not null && IsKnown(old.Name)
                ? $"'{text}': write a variant as DESIGN{VariantSeparator}VARIANT; {Describe(old.Name, extra)}"
                : $"unknown design '{name}'; known designs: {known}";
            return null;
        }

        if (colon < 0)
            return new DesignChoice(DefaultRef(name), null);
        var label = text[(colon + 1)..];
        if (VariantsFor(name, extra).FirstOrDefault(v => v.Label.Length > 0 && v.Label == label) is { } variant)
            return new DesignChoice(RunRef(DefaultRef(name), variant), label);
        error = $"design '{name}' has no variant '{label}'; {Describe(name, extra)}";
        return null;
    }

    /// <summary>"its variants: a:x, a:y" or "it has no variants".</summary>
    private static string Describe(string design, IEnumerable<VariantSpec> extra)
    {
        var labels = VariantsFor(design, extra).Select(v => v.Label).Where(l => l.Length > 0).ToList();
        return labels.Count == 0
            ? $"design '{design}' has no variants"
            : $"its variants: {string.Join(", ", labels.Select(l => $"{design}{VariantSeparator}{l}"))}";
    }

    /// <summary>
    /// The kernel model's design (<see cref="DesignRef"/>) for a one-design choice: the design with its argument at its
    /// default, or the variant's (<c>proposal-module-param:param=on</c> gives <c>proposal-module-param=on</c>). A
    /// variant's VMM or mapping choices are not part of it. It is the design a run of that choice runs with
    /// (<see cref="RunRef"/>).
    /// </summary>
    public static DesignRef KernelSpec(DesignChoice choice, IEnumerable<VariantSpec> extra) =>
        choice.Design ?? throw new ArgumentException("'all' is not one design", nameof(choice));

    /// <summary>The design a run uses: <paramref name="design"/> (a host's, or a design at its default), with the variant's argument if it sets one.</summary>
    public static DesignRef RunRef(DesignRef design, RunVariant variant) =>
        variant.DesignArgument is { } a ? design with { Argument = a } : design;

    /// <summary>
    /// Whether a design's uAPI has KVM_MEM_ENABLE_CACHEABLE_PFNMAP, as its registration declares
    /// (<see cref="KvmDesignAttribute.ExtraMemslotFlags"/>).
    /// </summary>
    public static bool HasCacheableFlag(string design) =>
        KvmDesigns.Find(design) is { } e && (e.ExtraMemslotFlags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0;

    /// <summary>The same for a built design (by the registration it came from).</summary>
    public static bool HasCacheableFlag(IKvmDesign design) =>
        (KvmDesigns.EntryOf(design).ExtraMemslotFlags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0;

    /// <summary>The variant a choice names (or, for a bare design, the design as configured: parameters at their defaults).</summary>
    public static RunVariant VariantOf(DesignChoice choice, IEnumerable<VariantSpec> extra) =>
        choice is { Design: { Name: var d }, Variant: { } v } ? VariantsFor(d, extra).First(x => x.Label == v) : RunVariant.Default;

    /// <summary>The variants <c>--design all</c> runs for a design (before scenario-defined variants).</summary>
    public static IReadOnlyList<RunVariant> VariantsOf(string design)
    {
        var empty = new Dictionary<string, NvGraceUsememMapping>();
        // A design whose uAPI has KVM_MEM_ENABLE_CACHEABLE_PFNMAP is explored with both VMM choices of the flag.
        if (HasCacheableFlag(design))
        {
            return
            [
                new("flag=prefer-cacheable", null, CacheableFlagChoice.PreferCacheable, empty),
                new("flag=prefer-migratable", null, CacheableFlagChoice.PreferMigratable, empty),
            ];
        }

        // One variant per declared value of the design's (one) argument.
        if (KvmDesigns.Find(design) is not { Arguments.Count: > 0 } entry)
            return [RunVariant.Default];
        return entry.Arguments
            .Select(v => new RunVariant($"{ParameterName}={v}", v, null, empty))
            .ToList();
    }
}
