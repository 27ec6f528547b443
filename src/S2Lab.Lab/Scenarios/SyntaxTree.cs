namespace S2Lab.Lab.Scenarios;

/// <summary>A position in a scenario file, 1-based as editors show it.</summary>
public readonly record struct SourceMark(int Line, int Column)
{
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>
/// A node of a parsed scenario document, independent of the surface syntax (YAML or JSON), carrying the position
/// where it starts so that every validation error can name file, line and column.
/// </summary>
public abstract record SyntaxNode(SourceMark Start)
{
    /// <summary>What a user calls this kind of node in an error message.</summary>
    public abstract string KindName { get; }
}

/// <summary>A scalar: a string, number, boolean or null, kept as its source text.</summary>
public sealed record ScalarNode(SourceMark Start, string Text, bool IsQuoted, bool IsNull = false) : SyntaxNode(Start)
{
    public override string KindName => IsNull ? "null" : "a scalar";
}

/// <summary>A sequence of nodes.</summary>
public sealed record SequenceNode(SourceMark Start, IReadOnlyList<SyntaxNode> Items) : SyntaxNode(Start)
{
    public override string KindName => "a list";
}

/// <summary>A mapping with its keys in source order (duplicates are kept so that the binder can report them).</summary>
public sealed record MappingNode(SourceMark Start, IReadOnlyList<KeyValuePair<ScalarNode, SyntaxNode>> Entries) : SyntaxNode(Start)
{
    public override string KindName => "a mapping";
}
