using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace S2Lab.Lab.Scenarios;

/// <summary>Reads YAML or JSON text into a <see cref="SyntaxNode"/> tree with source positions.</summary>
public static class SyntaxReaders
{
    /// <summary>Parses YAML (one document). Syntax errors become a <see cref="ScenarioException"/>.</summary>
    public static SyntaxNode ParseYaml(string text, string file)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, SyntaxNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
                throw Fail(file, new SourceMark(1, 1), "the file is empty");
            parser.Consume<DocumentStart>();
            var root = ReadYamlNode(parser, anchors);
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

    private static SyntaxNode ReadYamlNode(IParser parser, Dictionary<string, SyntaxNode> anchors)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            return anchors.TryGetValue(alias.Value.Value, out var target)
                ? target
                : throw new YamlException(alias.Start, alias.End, $"unknown alias *{alias.Value.Value}");
        }

        SyntaxNode node;
        string? anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            anchor = scalar.Anchor.IsEmpty ? null : scalar.Anchor.Value;
            bool plain = scalar.Style == ScalarStyle.Plain;
            bool isNull = plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL";
            node = new ScalarNode(Mark(scalar.Start), scalar.Value, !plain, isNull);
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            anchor = seqStart.Anchor.IsEmpty ? null : seqStart.Anchor.Value;
            var items = new List<SyntaxNode>();
            while (!parser.TryConsume<SequenceEnd>(out _))
                items.Add(ReadYamlNode(parser, anchors));
            node = new SequenceNode(Mark(seqStart.Start), items);
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            anchor = mapStart.Anchor.IsEmpty ? null : mapStart.Anchor.Value;
            var entries = new List<KeyValuePair<ScalarNode, SyntaxNode>>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var keyNode = ReadYamlNode(parser, anchors);
                if (keyNode is not ScalarNode key)
                    throw new YamlException(parser.Current!.Start, parser.Current.End, "mapping keys must be plain names");
                entries.Add(new(key, ReadYamlNode(parser, anchors)));
            }

            node = new MappingNode(Mark(mapStart.Start), entries);
        }
        else
        {
            var cur = parser.Current!;
            throw new YamlException(cur.Start, cur.End, $"unexpected {cur.GetType().Name}");
        }

        if (anchor is not null)
            anchors[anchor] = node;
        return node;
    }

    private static SourceMark Mark(Mark m) => new((int)m.Line, (int)m.Column);

    /// <summary>Parses JSON (comments and trailing commas allowed). Syntax errors become a <see cref="ScenarioException"/>.</summary>
    public static SyntaxNode ParseJson(string text, string file)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var lines = new LineMap(bytes);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions
        {
            CommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
        });
        try
        {
            if (!reader.Read())
                throw Fail(file, new SourceMark(1, 1), "the file is empty");
            var root = ReadJsonNode(ref reader, lines);
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

    private static SyntaxNode ReadJsonNode(ref Utf8JsonReader reader, LineMap lines)
    {
        var at = lines.At(reader.TokenStartIndex);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    var entries = new List<KeyValuePair<ScalarNode, SyntaxNode>>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var key = new ScalarNode(lines.At(reader.TokenStartIndex), reader.GetString()!, IsQuoted: true);
                        reader.Read();
                        entries.Add(new(key, ReadJsonNode(ref reader, lines)));
                    }

                    return new MappingNode(at, entries);
                }
            case JsonTokenType.StartArray:
                {
                    var items = new List<SyntaxNode>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        items.Add(ReadJsonNode(ref reader, lines));
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
