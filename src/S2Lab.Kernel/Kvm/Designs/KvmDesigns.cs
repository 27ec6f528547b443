using System.Reflection;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>
/// A registered design: its name, the argument values it accepts ("on"/"off"; none for most), the memslot flags its
/// uAPI adds (<see cref="KvmDesignAttribute.ExtraMemslotFlags"/>), its class, and how to build it.
/// </summary>
public sealed record KvmDesignEntry(string Name, string Summary, IReadOnlyList<string> Arguments, KvmMemFlags ExtraMemslotFlags, Type DesignType, Func<string?, IKvmDesign> Create);

/// <summary>
/// The registry of designs, found by <see cref="KvmDesignAttribute"/>. A design spec is a <see cref="DesignRef"/>: a
/// name with an optional argument after '=': <c>linux-6.17</c>, <c>proposal-module-param=on</c>.
/// </summary>
public static class KvmDesigns
{
    private static readonly Lazy<IReadOnlyList<KvmDesignEntry>> Entries = new(() => Discover(typeof(KvmDesigns).Assembly.GetTypes()));

    /// <summary>The registry of <see cref="Including"/>'s scope in this flow, if any.</summary>
    private static readonly AsyncLocal<IReadOnlyList<KvmDesignEntry>?> Scoped = new();

    /// <summary>Every design, in the order of docs/designs.md.</summary>
    public static IReadOnlyList<KvmDesignEntry> All => Scoped.Value ?? Entries.Value;

    /// <summary>
    /// A registry that also holds <paramref name="designTypes"/> (classes with <see cref="KvmDesignAttribute"/> outside
    /// this assembly), in effect until the scope is disposed, for this flow and the tasks it starts. It shows that a
    /// class is all a new design needs: a test registers one and finds it in every tool that lists designs.
    /// </summary>
    public static IDisposable Including(params Type[] designTypes)
    {
        var outer = Scoped.Value;
        Scoped.Value = Discover([.. typeof(KvmDesigns).Assembly.GetTypes(), .. designTypes]);
        return new Scope(() => Scoped.Value = outer);
    }

    /// <summary>The names of every registered design.</summary>
    public static IEnumerable<string> Names => All.Select(e => e.Name);

    /// <summary>The entry of a registered name (case-insensitive), or null.</summary>
    public static KvmDesignEntry? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The entry a design object was built from (by its class).</summary>
    public static KvmDesignEntry EntryOf(IKvmDesign design) =>
        All.FirstOrDefault(e => e.DesignType == design.GetType())
            ?? throw new ArgumentException($"{design.GetType().Name} is not a registered design", nameof(design));

    /// <summary>Builds a design from a spec string (<see cref="DesignRef.TryParse"/>); null with <paramref name="error"/> set otherwise.</summary>
    public static IKvmDesign? TryCreate(string spec, out string? error)
    {
        if (!DesignRef.TryParse(spec, out var r, out error))
            return null;
        return TryCreate(r, out error);
    }

    /// <summary>Builds a design; null with <paramref name="error"/> set for an unknown name or bad argument.</summary>
    public static IKvmDesign? TryCreate(DesignRef design, out string? error)
    {
        var (name, arg) = (design.Name, design.Argument);
        var entry = Find(name);
        if (entry is null)
        {
            error = $"unknown design '{name}'; known designs: {string.Join(", ", Names)}";
            return null;
        }
        try
        {
            error = null;
            return entry.Create(arg);
        }
        catch (ArgumentException e)
        {
            error = $"design '{name}': {e.Message}";
            return null;
        }
    }

    /// <summary>Builds a design from a spec; throws <see cref="ArgumentException"/> naming the known designs otherwise.</summary>
    public static IKvmDesign Create(string spec) =>
        TryCreate(spec, out var error) ?? throw new ArgumentException(error, nameof(spec));

    /// <summary>Builds a design; throws <see cref="ArgumentException"/> naming the known designs otherwise.</summary>
    public static IKvmDesign Create(DesignRef design) =>
        TryCreate(design, out var error) ?? throw new ArgumentException(error, nameof(design));

    private static IReadOnlyList<KvmDesignEntry> Discover(IEnumerable<Type> types)
    {
        var list = new List<(int Order, KvmDesignEntry Entry)>();
        foreach (var t in types)
        {
            if (t.GetCustomAttribute<KvmDesignAttribute>() is not { } a || !typeof(IKvmDesign).IsAssignableFrom(t))
                continue;
            var withArg = t.GetConstructor([typeof(string)]);
            var noArg = t.GetConstructor(Type.EmptyTypes);
            Func<string?, IKvmDesign> create = withArg is not null
                ? arg => Invoke(withArg, [arg])
                : arg => arg is null ? Invoke(noArg!, []) : throw new ArgumentException($"takes no argument (got '{arg}')");
            var summary = create(null).Summary;
            list.Add((a.Order, new KvmDesignEntry(a.Name, summary, a.Arguments, a.ExtraMemslotFlags, t, create)));
        }
        return list.OrderBy(x => x.Order).Select(x => x.Entry).ToList();
    }

    private static IKvmDesign Invoke(ConstructorInfo ctor, object?[] args)
    {
        try
        {
            return (IKvmDesign)ctor.Invoke(args);
        }
        catch (TargetInvocationException e) when (e.InnerException is ArgumentException inner)
        {
            throw inner;
        }
    }

    private sealed class Scope(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
