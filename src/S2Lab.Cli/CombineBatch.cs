using System.Text;
using S2Lab.Arch.Attributes;

namespace S2Lab.Cli;

/// <summary>
/// <c>s2lab combine --batch</c>: CSV in (<c>fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh</c>), CSV out (<c>attr,sh,type</c>).
/// The input is streamed; output is held until every row has parsed, so a malformed row produces no partial output.
/// </summary>
internal static class CombineBatch
{
    public const string InputHeader = "fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh";
    public const string OutputHeader = "attr,sh,type";

    private static readonly string[] FieldNames = InputHeader.Split(',');

    /// <summary>An input error: where, which field, what.</summary>
    public sealed record BatchError(long Line, string? Field, string Message);

    /// <summary>
    /// Runs the batch from <paramref name="input"/> into <paramref name="output"/>; returns null on success, or the first
    /// error (and then writes nothing).
    /// </summary>
    public static BatchError? Run(TextReader input, TextWriter output, AttributeFeatures features)
    {
        var result = new StringBuilder(1 << 16);
        result.Append(OutputHeader).Append('\n');
        var reader = new LineReader(input);
        long lineNo = 0;
        var sawHeader = false;
        Span<Range> ranges = stackalloc Range[FieldNames.Length + 1];

        while (reader.TryReadLine(out var line))
        {
            lineNo++;
            if (!sawHeader)
            {
                if (!line.SequenceEqual(InputHeader))
                {
                    return HeaderError(line);
                }

                sawHeader = true;
                continue;
            }

            var count = line.Split(ranges, ',');
            if (count != FieldNames.Length)
            {
                return new BatchError(lineNo, null, $"expected {FieldNames.Length} fields ({InputHeader}), found {(line.IsEmpty ? 0 : Math.Min(count, FieldNames.Length + 1))}{(count > FieldNames.Length ? " or more" : "")}");
            }

            if (!CombineParsing.TryParseBit(line[ranges[0]], out var fwb))
            {
                return Bad(lineNo, 0, "0 or 1", line[ranges[0]]);
            }

            if (!CombineParsing.TryParseBit(line[ranges[1]], out var cd))
            {
                return Bad(lineNo, 1, "0 or 1", line[ranges[1]]);
            }

            if (!CombineParsing.TryParseHexByte(line[ranges[2]], out var s1))
            {
                return Bad(lineNo, 2, "a byte 0xNN", line[ranges[2]]);
            }

            if (!ShareabilityRules.TryParse(line[ranges[3]], out var s1Sh))
            {
                return Bad(lineNo, 3, "NSH, ISH or OSH", line[ranges[3]]);
            }

            if (!CombineParsing.TryParseMemAttr(line[ranges[4]], out var s2))
            {
                return Bad(lineNo, 4, "a MemAttr 0bNNNN", line[ranges[4]]);
            }

            if (!ShareabilityRules.TryParse(line[ranges[5]], out var s2Sh))
            {
                return Bad(lineNo, 5, "NSH, ISH or OSH", line[ranges[5]]);
            }

            var r = AttributeCombiner.Combine(new CombineInput(s1, s1Sh, s2, s2Sh, fwb, cd) { Features = features });
            AppendRow(result, r);
        }

        if (!sawHeader)
        {
            return new BatchError(1, null, $"empty input: expected the header '{InputHeader}'");
        }

        output.Write(result);
        output.Flush();
        return null;
    }

    private static readonly string[] HexDigits = [.. Enumerable.Range(0, 256).Select(b => $"0x{b:X2},")];

    private static void AppendRow(StringBuilder sb, in CombineResult r) =>
        sb.Append(HexDigits[r.ParAttr]).Append(ShName(r.Shareability)).Append(',').Append(r.Description).Append('\n');

    private static string ShName(Shareability sh) => sh switch
    {
        Shareability.NSH => "NSH",
        Shareability.ISH => "ISH",
        _ => "OSH",
    };

    private static BatchError HeaderError(ReadOnlySpan<char> line)
    {
        Span<Range> ranges = stackalloc Range[FieldNames.Length + 1];
        var count = line.Split(ranges, ',');
        for (var i = 0; i < FieldNames.Length; i++)
        {
            if (i >= count)
            {
                return new BatchError(1, FieldNames[i], $"header is missing column '{FieldNames[i]}' (expected '{InputHeader}')");
            }

            if (!line[ranges[i]].SequenceEqual(FieldNames[i]))
            {
                return new BatchError(1, FieldNames[i], $"header column {i + 1} is '{line[ranges[i]]}', expected '{FieldNames[i]}' (header '{InputHeader}')");
            }
        }

        return new BatchError(1, null, $"header has extra columns (expected '{InputHeader}')");
    }

    private static BatchError Bad(long line, int field, string expected, ReadOnlySpan<char> got) =>
        new(line, FieldNames[field], $"expected {expected}, got '{got}'");

    /// <summary>Reads lines (LF or CRLF) into a reused buffer: no allocation per line.</summary>
    private sealed class LineReader(TextReader reader)
    {
        private char[] _buffer = new char[1 << 16];
        private int _start;
        private int _end;
        private bool _eof;

        public bool TryReadLine(out ReadOnlySpan<char> line)
        {
            while (true)
            {
                var nl = _buffer.AsSpan(_start, _end - _start).IndexOf('\n');
                if (nl >= 0)
                {
                    line = Trim(_buffer.AsSpan(_start, nl));
                    _start += nl + 1;
                    return true;
                }

                if (_eof)
                {
                    if (_start < _end)
                    {
                        line = Trim(_buffer.AsSpan(_start, _end - _start));
                        _start = _end;
                        return true;
                    }

                    line = default;
                    return false;
                }

                Fill();
            }
        }

        private static ReadOnlySpan<char> Trim(ReadOnlySpan<char> s) => s.Length > 0 && s[^1] == '\r' ? s[..^1] : s;

        private void Fill()
        {
            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var n = reader.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
            {
                _eof = true;
            }
            else
            {
                _end += n;
            }
        }
    }
}
