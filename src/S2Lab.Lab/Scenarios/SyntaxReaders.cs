using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// Reads YAML or JSON text into a <see cref="SyntaxNode"/> tree with source positions. Hostile input is bounded: nesting
/// deeper than <see cref="MaxDepth"/> and scalars longer than <see cref="MaxScalarLength"/> are errors at the node that
/// crosses the limit (a scenario needs about six levels and short words), never a stack overflow.
/// </summary>
public static class SyntaxReaders
{
    /// <summary>The deepest nesting of lists and mappings accepted (the root is level 1).</summary>
    public const int MaxDepth = 32;

    /// <summary>The longest scalar accepted, in characters (descriptions included).</summary>
    public const int MaxScalarLength = 16 * 1024;

    /// <summary>
    /// The most nodes a YAML document may have with its aliases expanded: an alias is cheap to write and each use is
    /// validated again, so a few lines of nested aliases could otherwise make the loader work for hours.
    /// </summary>
    public const int MaxNodes = 1 << 20;

    /// <summary>The path of the node being read, for errors at the limits ("steps[3].access").</summary>
    private sealed class NodePath
    {
        private readonly List<string> _parts = [];

        public int Depth => _parts.Count;

        /// <summary>Nodes read so far, counting each alias use as the size of what it names.</summary>
        public long Nodes { get; private set; }

        /// <summary>The expanded size of each anchored node.</summary>
        public Dictionary<SyntaxNode, long> AnchorSizes { get; } = new(ReferenceEqualityComparer.Instance);

        public void Count(long nodes, string file, SourceMark at)
        {
            Nodes += nodes;
            if (Nodes > MaxNodes)
                throw new LimitExceeded(new ScenarioError(file, at, ToString(), $"more than {MaxNodes} nodes once aliases are expanded"));
        }

        public void Push(string part) => _parts.Add(part);

        public void Pop() => _parts.RemoveAt(_parts.Count - 1);

        /// <summary>The path as the binder writes it; a long one keeps its first and last four parts.</summary>
        public override string ToString()
        {
            var sb = new StringBuilder();
            for (int i = 0; i < _parts.Count; i++)
            {
                if (_parts.Count > 8 && i == 4)
                {
                    sb.Append("...");
                    i = _parts.Count - 5;
                    continue;
                }

                if (sb.Length > 0 && !_parts[i].StartsWith('['))
                    sb.Append('.');
                sb.Append(_parts[i]);
            }

            return sb.ToString();
        }
    }

    private static string DepthMessage => $"nested deeper than {MaxDepth} levels of lists and mappings (a scenario needs about 6)";

    private static string ScalarMessage(int length) => $"a value of {length} characters; the limit is {MaxScalarLength}";
    /// <summary>Parses YAML (one document). Syntax errors become a <see cref="ScenarioException"/>.</summary>
    public static SyntaxNode ParseYaml(string text, string file)
    {
        try
        {
            return ReadYaml(text, file);
        }
        catch (LimitExceeded e)
        {
            throw new ScenarioException([e.Error]);
        }
    }

    private static SyntaxNode ReadYaml(string text, string file)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, SyntaxNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
                throw Fail(file, new SourceMark(1, 1), "the file is empty");
            parser.Consume<DocumentStart>();
            var root = ReadYamlNode(parser, anchors, new NodePath(), file);
            parser.Consume<DocumentEnd>();
            if (!parser.Accept<StreamEnd>(out _))
                throw Fail(file, Mark(parser.Current!.Start), "a scenario file holds one YAML document");
            return root;
        }
        catch (YamlException e)
        {
            throw Fail(file, new SourceMark((int)e.Start.Line, (int)e.Start.Column), $"YAML syntax: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner can fail this way on some malformed input (found by LoaderFuzzTests): still a
            // syntax error, reported where the parser last was.
            var at = parser.Current is { } cur ? Mark(cur.End) : new SourceMark(1, 1);
            throw Fail(file, at, $"YAML syntax: the file cannot be parsed past this point ({e.Message})");
        }
    }

    private static SyntaxNode ReadYamlNode(IParser parser, Dictionary<string, SyntaxNode> anchors, NodePath path, string file)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (!anchors.TryGetValue(alias.Value.Value, out var target))
                throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
            path.Count(path.AnchorSizes[target], file, Mark(alias.Start));
            return target;
        }

        var nodesBefore = path.Nodes;
        if (parser.Current is { } current)
            path.Count(1, file, Mark(current.Start));

        SyntaxNode node;
        string? anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            anchor = scalar.Anchor.IsEmpty ? null : scalar.Anchor.Value;
            if (scalar.Value.Length > MaxScalarLength)
                throw new LimitExceeded(new ScenarioError(file, Mark(scalar.Start), path.ToString(), ScalarMessage(scalar.Value.Length)));
            bool plain = scalar.Style == ScalarStyle.Plain;
            bool isNull = plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL";
            node = new ScalarNode(Mark(scalar.Start), scalar.Value, !plain, isNull);
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            anchor = seqStart.Anchor.IsEmpty ? null : seqStart.Anchor.Value;
            if (path.Depth >= MaxDepth)
                throw new LimitExceeded(new ScenarioError(file, Mark(seqStart.Start), path.ToString(), DepthMessage));
            var items = new List<SyntaxNode>();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                path.Push($"[{items.Count}]");
                items.Add(ReadYamlNode(parser, anchors, path, file));
                path.Pop();
            }

            node = new SequenceNode(Mark(seqStart.Start), items);
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            anchor = mapStart.Anchor.IsEmpty ? null : mapStart.Anchor.Value;
            if (path.Depth >= MaxDepth)
                throw new LimitExceeded(new ScenarioError(file, Mark(mapStart.Start), path.ToString(), DepthMessage));
            var entries = new List<KeyValuePair<ScalarNode, SyntaxNode>>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                path.Push("?");
                var keyNode = ReadYamlNode(parser, anchors, path, file);
                path.Pop();
                if (keyNode is not ScalarNode key)
                    throw new YamlException(parser.Current!.Start, parser.Current.End, "mapping keys must be plain names");
                path.Push(key.Text);
                entries.Add(new(key, ReadYamlNode(parser, anchors, path, file)));
                path.Pop();
            }

            node = new MappingNode(Mark(mapStart.Start), entries);
        }
        else
        {
            var cur = parser.Current!;
            throw new YamlException(cur.Start, cur.End, $"unexpected {cur.GetType().Name}");
        }

        if (anchor is not null)
        {
            anchors[anchor] = node;
            path.AnchorSizes[node] = path.Nodes - nodesBefore;
        }

        return node;
    }

    private static SourceMark Mark(Mark m) => new((int)m.Line, (int)m.Column);

    /// <summary>Parses JSON (comments and trailing commas allowed). Syntax errors become a <see cref="ScenarioException"/>.</summary>
    public static SyntaxNode ParseJson(string text, string file)
    {
        try
        {
            return ReadJson(text, file);
        }
        catch (LimitExceeded e)
        {
            throw new ScenarioException([e.Error]);
        }
    }

    /// <summary>
    /// Checks only the limits of JSON text (nesting, scalar length) for readers with their own JSON rules (replay lines,
    /// host profiles): the error at the node past a limit, with its field path, or null. Syntax errors are not reported
    /// here; the caller's parser reports them.
    /// </summary>
    public static ScenarioError? CheckJsonLimits(string text, string file)
    {
        try
        {
            ReadJson(text, file);
            return null;
        }
        catch (LimitExceeded e)
        {
            return e.Error;
        }
        catch (ScenarioException)
        {
            return null;
        }
    }

    private static SyntaxNode ReadJson(string text, string file)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw Fail(file, new SourceMark(1, 1), "the file is empty");
        var bytes = Encoding.UTF8.GetBytes(text);
        var lines = new LineMap(bytes);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions
        {
            CommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            // One more than the limit: ReadJsonNode reports the limit itself, with the field's path.
            MaxDepth = MaxDepth + 1,
        });
        try
        {
            if (!reader.Read())
                throw Fail(file, new SourceMark(1, 1), "the file is empty");
            var root = ReadJsonNode(ref reader, lines, new NodePath(), file);
            if (reader.Read())
                throw Fail(file, lines.At(reader.TokenStartIndex), "a scenario file holds one JSON value");
            return root;
        }
        catch (JsonException e)
        {
            // The reader reports a 0-based line and a byte position within that line.
            var line = (int)(e.LineNumber ?? 0) + 1;
            var col = (int)(e.BytePositionInLine ?? 0) + 1;
            throw Fail(file, new SourceMark(line, col), $"JSON syntax: {FirstSentence(e.Message)}");
        }
    }

    private static SyntaxNode ReadJsonNode(ref Utf8JsonReader reader, LineMap lines, NodePath path, string file)
    {
        var at = lines.At(reader.TokenStartIndex);
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && path.Depth >= MaxDepth)
            throw new LimitExceeded(new ScenarioError(file, at, path.ToString(), DepthMessage));
        // The raw (UTF-8, escaped) length bounds the text's length from above; only a long one is decoded to measure it.
        if (reader.TokenType is JsonTokenType.String && reader.ValueSpan.Length > MaxScalarLength && reader.GetString()!.Length is var n && n > MaxScalarLength)
            throw new LimitExceeded(new ScenarioError(file, at, path.ToString(), ScalarMessage(n)));
        if (reader.TokenType is JsonTokenType.Number && reader.ValueSpan.Length > MaxScalarLength)
            throw new LimitExceeded(new ScenarioError(file, at, path.ToString(), ScalarMessage(reader.ValueSpan.Length)));
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    var entries = new List<KeyValuePair<ScalarNode, SyntaxNode>>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var keyAt = lines.At(reader.TokenStartIndex);
                        var key = new ScalarNode(keyAt, reader.GetString()!, IsQuoted: true);
                        if (key.Text.Length > MaxScalarLength)
                            throw new LimitExceeded(new ScenarioError(file, keyAt, path.ToString(), ScalarMessage(key.Text.Length)));
                        reader.Read();
                        path.Push(key.Text);
                        entries.Add(new(key, ReadJsonNode(ref reader, lines, path, file)));
                        path.Pop();
                    }

                    return new MappingNode(at, entries);
                }
            case JsonTokenType.StartArray:
                {
                    var items = new List<SyntaxNode>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        path.Push($"[{items.Count}]");
                        items.Add(ReadJsonNode(ref reader, lines, path, file));
                        path.Pop();
                    }

                    return new SequenceNode(at, items);
                }
            case JsonTokenType.String:
                return new ScalarNode(at, reader.GetString()!, IsQuoted: true);
            case JsonTokenType.Number:
                return new ScalarNode(at, Encoding.UTF8.GetString(reader.ValueSpan), IsQuoted: false);
            case JsonTokenType.True:
                return new ScalarNode(at, "true", IsQuoted: false);
            case JsonTokenType.False:
                return new ScalarNode(at, "false", IsQuoted: false);
            case JsonTokenType.Null:
                return new ScalarNode(at, "", IsQuoted: false, IsNull: true);
            default:
                throw new JsonException($"unexpected {reader.TokenType}", null, at.Line - 1, at.Column - 1);
        }
    }

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(". ", StringComparison.Ordinal);
        return i < 0 ? message : message[..i];
    }

    private static ScenarioException Fail(string file, SourceMark at, string message) =>
        new([new ScenarioError(file, at, "", message)]);

    /// <summary>A node past <see cref="MaxDepth"/> or <see cref="MaxScalarLength"/>; the public readers report it as a <see cref="ScenarioException"/>.</summary>
    private sealed class LimitExceeded(ScenarioError error) : Exception(error.ToString())
    {
        public ScenarioError Error { get; } = error;
    }

    /// <summary>Maps byte offsets to 1-based line/column (columns count UTF-8 code points).</summary>
    private sealed class LineMap
    {
        private readonly byte[] _bytes;
        private readonly List<int> _starts = [0];

        public LineMap(byte[] bytes)
        {
            _bytes = bytes;
            for (int i = 0; i < bytes.Length; i++)
            {
                if (bytes[i] == (byte)'\n')
                    _starts.Add(i + 1);
            }
        }

        public SourceMark At(long offset)
        {
            int idx = _starts.BinarySearch((int)offset);
            if (idx < 0)
                idx = ~idx - 1;
            int start = _starts[idx];
            int col = 1;
            for (int i = start; i < offset; i++)
            {
                if ((_bytes[i] & 0xC0) != 0x80)
                    col++;
            }

            return new SourceMark(idx + 1, col);
        }
    }
}
