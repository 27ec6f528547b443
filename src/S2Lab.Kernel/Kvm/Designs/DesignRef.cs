namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>
/// A reference to a registered design with its one optional argument, the only place a design string is parsed and
/// printed: <c>linux-6.17</c>, <c>proposal-module-param=on</c>. A registry entry declares at most one argument
/// (<see cref="KvmDesignAttribute.Arguments"/>), so there is nothing to join: an argument holds no '=' or ','.
/// </summary>
/// <param name="Name">The registry name.</param>
/// <param name="Argument">The argument after '=', or null.</param>
public readonly record struct DesignRef(string Name, string? Argument = null)
{
    /// <summary>Separates the name from the argument.</summary>
    public const char ArgumentSeparator = '=';

    /// <summary>
    /// Parses <c>NAME</c> or <c>NAME=ARGUMENT</c> (spaces around either part are dropped). Syntax only: whether the
    /// registry knows the name and accepts the argument is <see cref="KvmDesigns.TryCreate(DesignRef, out string?)"/>'s
    /// question. False with <paramref name="error"/> for an empty name, an empty argument, or a second '=' or a ','.
    /// </summary>
    public static bool TryParse(string text, out DesignRef value, out string? error)
    {
        value = default;
        var eq = text.IndexOf(ArgumentSeparator, StringComparison.Ordinal);
        var name = (eq < 0 ? text : text[..eq]).Trim();
        var arg = eq < 0 ? null : text[(eq + 1)..].Trim();
        error = name.Length == 0 ? $"'{text}': no design name"
            : name.IndexOfAny([',', ' ']) >= 0 ? $"'{text}': a design name has no ',' or spaces"
            : arg is { Length: 0 } ? $"'{text}': no argument after '{ArgumentSeparator}'"
            : arg is not null && arg.IndexOfAny([ArgumentSeparator, ',']) >= 0 ? $"'{text}': a design takes one argument (no '{ArgumentSeparator}' or ',' in it)"
            : null;
        if (error is not null)
            return false;
        value = new DesignRef(name, arg);
        return true;
    }

    /// <summary>Parses a design string; throws <see cref="ArgumentException"/> with <see cref="TryParse"/>'s error.</summary>
    public static DesignRef Parse(string text) =>
        TryParse(text, out var r, out var error) ? r : throw new ArgumentException(error, nameof(text));

    /// <summary><c>NAME</c> or <c>NAME=ARGUMENT</c>; <see cref="Parse"/> reads it back to an equal value.</summary>
    public override string ToString() => Argument is null ? Name : $"{Name}{ArgumentSeparator}{Argument}";
}
