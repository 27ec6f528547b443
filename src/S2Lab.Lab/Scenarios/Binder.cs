using System.Globalization;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// Typed reading of <see cref="SyntaxNode"/>s with error collection: every read names the field path, and a bad value
/// adds a <see cref="ScenarioError"/> instead of throwing, so that one pass reports every problem in a file.
/// </summary>
internal sealed class Binder(string file)
{
    private readonly List<ScenarioError> _errors = [];

    public string File { get; } = file;

    public IReadOnlyList<ScenarioError> Errors => _errors;

    public void Error(SourceMark at, string field, string message) => _errors.Add(new ScenarioError(File, at, field, message));

    /// <summary>A mapping's fields by name; reports duplicates and (via <see cref="Fields.Done"/>) unknown keys.</summary>
    public Fields? Map(SyntaxNode? node, string path)
    {
        if (node is null)
            return null;
        if (node is not MappingNode m)
        {
            Error(node.Start, path, $"expected a mapping, found {node.KindName}");
            return null;
        }

        return new Fields(this, m, path);
    }

    public IReadOnlyList<SyntaxNode> List(SyntaxNode? node, string path)
    {
        if (node is null)
            return [];
        if (node is SequenceNode s)
            return s.Items;
        Error(node.Start, path, $"expected a list, found {node.KindName}");
        return [];
    }

    public string? Str(SyntaxNode? node, string path)
    {
        if (node is null)
            return null;
        if (node is ScalarNode { IsNull: false } s)
            return s.Text;
        Error(node.Start, path, $"expected a string, found {node.KindName}");
        return null;
    }

    /// <summary>A name: letters, digits, '-', '_', '.'; not empty.</summary>
    public string? Name(SyntaxNode? node, string path)
    {
        var s = Str(node, path);
        if (s is null)
            return null;
        if (s.Length == 0 || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            Error(node!.Start, path, $"'{s}' is not a valid name (letters, digits, '-', '_', '.')");
            return null;
        }

        return s;
    }

    public bool? Bool(SyntaxNode? node, string path)
    {
        var s = Str(node, path);
        if (s is null)
            return null;
        switch (s.ToLowerInvariant())
        {
            case "true" or "yes" or "on":
                return true;
            case "false" or "no" or "off":
                return false;
            default:
                Error(node!.Start, path, $"expected true or false, found '{s}'");
                return null;
        }
    }

    /// <summary>An unsigned integer: decimal, 0x hex, 0b binary, '_' separators, optional K/M/G/T[i][B] suffix (binary units).</summary>
    public ulong? Size(SyntaxNode? node, string path)
    {
        var s = Str(node, path);
        if (s is null)
            return null;
        if (TryParseSize(s, out var v))
            return v;
        Error(node!.Start, path, $"expected a number or a size such as 0x1000, 4096, 64KiB, 1GiB; found '{s}'");
        return null;
    }

    public int? Int(SyntaxNode? node, string path, int min, int max)
    {
        var v = Size(node, path);
        if (v is null)
            return null;
        if (v < (ulong)min || v > (ulong)max)
        {
            Error(node!.Start, path, $"must be between {min} and {max}, found {v}");
            return null;
        }

        return (int)v;
    }

    /// <summary>One of a fixed set of words (case-insensitive); the error lists them.</summary>
    public T? Enum<T>(SyntaxNode? node, string path, IReadOnlyDictionary<string, T> words)
        where T : struct
    {
        var s = Str(node, path);
        if (s is null)
            return null;
        if (words.TryGetValue(s.ToLowerInvariant(), out var v))
            return v;
        Error(node!.Start, path, $"'{s}' is not one of: {string.Join(", ", words.Keys)}");
        return null;
    }

    public static bool TryParseSize(string text, out ulong value)
    {
        value = 0;
        var s = text.Trim().Replace("_", "", StringComparison.Ordinal);
        if (s.Length == 0)
            return false;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        if (s.StartsWith("0b", StringComparison.OrdinalIgnoreCase))
        {
            var bits = s[2..];
            if (bits.Length is 0 or > 64 || bits.Any(c => c is not ('0' or '1')))
                return false;
            value = Convert.ToUInt64(bits, 2);
            return true;
        }

        int i = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i]))
            i++;
        if (i == 0 || !ulong.TryParse(s.AsSpan(0, i), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            return false;
        int shift = s[i..].ToLowerInvariant() switch
        {
            "" or "b" => 0,
            "k" or "kb" or "kib" => 10,
            "m" or "mb" or "mib" => 20,
            "g" or "gb" or "gib" => 30,
            "t" or "tb" or "tib" => 40,
            _ => -1,
        };
        if (shift < 0 || (shift > 0 && n > (ulong.MaxValue >> shift)))
            return false;
        value = n << shift;
        return true;
    }
}

/// <summary>The fields of one mapping, read by name; <see cref="Done"/> reports keys nobody read.</summary>
internal sealed class Fields
{
    private readonly Binder _b;
    private readonly Dictionary<string, KeyValuePair<ScalarNode, SyntaxNode>> _byName = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public Fields(Binder b, MappingNode node, string path)
    {
        _b = b;
        Node = node;
        Path = path;
        foreach (var e in node.Entries)
        {
            if (!_byName.TryAdd(e.Key.Text, e))
                b.Error(e.Key.Start, Sub(e.Key.Text), "duplicate key");
        }
    }

    public MappingNode Node { get; }

    public string Path { get; }

    public SourceMark At => Node.Start;

    public IEnumerable<KeyValuePair<ScalarNode, SyntaxNode>> Entries => Node.Entries;

    public string Sub(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public bool Has(string key) => _byName.ContainsKey(key);

    /// <summary>The value of an optional field (null when absent).</summary>
    public SyntaxNode? Opt(string key)
    {
        _read.Add(key);
        return _byName.TryGetValue(key, out var e) ? e.Value : null;
    }

    /// <summary>The value of a required field; reports "missing required field" at the mapping when absent.</summary>
    public SyntaxNode? Req(string key)
    {
        var v = Opt(key);
        if (v is null || v is ScalarNode { IsNull: true })
            _b.Error(v?.Start ?? At, Sub(key), "missing required field");
        return v is ScalarNode { IsNull: true } ? null : v;
    }

    /// <summary>Marks every key as read (for mappings whose keys are names, not fields).</summary>
    public void AllRead()
    {
        foreach (var k in _byName.Keys)
            _read.Add(k);
    }

    /// <summary>Reports every key that is not a known field, naming the known ones.</summary>
    public void Done()
    {
        foreach (var e in Node.Entries)
        {
            if (!_read.Contains(e.Key.Text))
                _b.Error(e.Key.Start, Sub(e.Key.Text), $"unknown field; expected one of: {string.Join(", ", _read.Order(StringComparer.Ordinal))}");
        }
    }
}
