using S2Lab.Arch.Attributes;

namespace S2Lab.Cli;

/// <summary>
/// <c>s2lab combine --batch</c>: CSV in (<c>fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh</c>), CSV out (<c>attr,sh,type</c>),
/// in constant memory: rows are parsed from a fixed buffer and written through a fixed buffer as they are combined.
/// Callers that can read the input twice (a regular file) run <see cref="Validate"/> first, so that a malformed row
/// produces no output at all; a pipe is combined in one pass, and the rows before a malformed one have been written
/// when the error is reported (the exit code says the output is incomplete).
/// </summary>
internal static class CombineBatch
{
    public const string InputHeader = "fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh";
    public const string OutputHeader = "attr,sh,type";

    /// <summary>The longest input line accepted (a row is about 25 characters).</summary>
    public const int MaxLineLength = 4096;

    private static readonly string[] FieldNames = InputHeader.Split(',');

    /// <summary>An input error: where, which field, what.</summary>
    public sealed record BatchError(long Line, string? Field, string Message);

    /// <summary>Checks every row of <paramref name="input"/> without combining or writing; null when all are well-formed.</summary>
    public static BatchError? Validate(TextReader input) => Process(input, null, AttributeFeatures.None, out _);

    /// <summary>
    /// Combines the rows of <paramref name="input"/> into <paramref name="output"/> as they are read; null on success, or
    /// the first error (the rows before it have been written and flushed; <paramref name="rowsWritten"/> counts them).
    /// </summary>
    public static BatchError? Run(TextReader input, TextWriter output, AttributeFeatures features, out long rowsWritten) =>
        Process(input, output, features, out rowsWritten);

    private static BatchError? Process(TextReader input, TextWriter? output, AttributeFeatures features, out long rowsWritten)
    {
        rowsWritten = 0;
        var writer = output is null ? null : new RowWriter(output);
        var reader = new LineReader(input);
        long lineNo = 0;
        var sawHeader = false;
        Span<Range> ranges = stackalloc Range[FieldNames.Length + 1];
        try
        {
            while (true)
            {
                if (!reader.TryReadLine(out var line, out var tooLong))
                {
                    if (tooLong)
                        return new BatchError(lineNo + 1, null, $"line longer than {MaxLineLength} characters (a row is about 25)");
                    break;
                }

                lineNo++;
                if (!sawHeader)
                {
                    if (!line.SequenceEqual(InputHeader))
                        return HeaderError(line);
                    sawHeader = true;
                    writer?.Append(OutputHeader).Append('\n');
                    continue;
                }

                var count = line.Split(ranges, ',');
                if (count != FieldNames.Length)
                {
                    return new BatchError(lineNo, null, $"expected {FieldNames.Length} fields ({InputHeader}), found {(line.IsEmpty ? 0 : Math.Min(count, FieldNames.Length + 1))}{(count > FieldNames.Length ? " or more" : "")}");
                }

                if (!CombineParsing.TryParseBit(line[ranges[0]], out var fwb))
                    return Bad(lineNo, 0, "0 or 1", line[ranges[0]]);
                if (!CombineParsing.TryParseBit(line[ranges[1]], out var cd))
                    return Bad(lineNo, 1, "0 or 1", line[ranges[1]]);
                if (!CombineParsing.TryParseHexByte(line[ranges[2]], out var s1))
                    return Bad(lineNo, 2, "a byte 0xNN", line[ranges[2]]);
                if (!ShareabilityRules.TryParse(line[ranges[3]], out var s1Sh))
                    return Bad(lineNo, 3, "NSH, ISH or OSH", line[ranges[3]]);
                if (!CombineParsing.TryParseMemAttr(line[ranges[4]], out var s2))
                    return Bad(lineNo, 4, "a MemAttr 0bNNNN", line[ranges[4]]);
                if (!ShareabilityRules.TryParse(line[ranges[5]], out var s2Sh))
                    return Bad(lineNo, 5, "NSH, ISH or OSH", line[ranges[5]]);
                if (writer is null)
                    continue;
                var r = AttributeCombiner.Combine(new CombineInput(s1, s1Sh, s2, s2Sh, fwb, cd) { Features = features });
                writer.Append(HexDigits[r.ParAttr]).Append(ShName(r.Shareability)).Append(',').Append(r.Description).Append('\n');
                writer.EndRow();
                rowsWritten++;
            }

            return sawHeader ? null : new BatchError(1, null, $"empty input: expected the header '{InputHeader}'");
        }
        finally
        {
            // Whatever was combined before an error is written out too: a pipe's reader sees every finished row.
            writer?.Flush();
        }
    }

    /// <summary>
    /// Collects output in a fixed buffer and hands it to the writer in large writes (one per ~64 KiB, never per row),
    /// only at row boundaries, so that a reader of the pipe never sees half a row.
    /// </summary>
    private sealed class RowWriter(TextWriter output)
    {
        private readonly char[] _buffer = new char[1 << 16];
        private int _length;

        public RowWriter Append(string s)
        {
            Reserve(s.Length);
            s.CopyTo(_buffer.AsSpan(_length));
            _length += s.Length;
            return this;
        }

        public RowWriter Append(char c)
        {
            Reserve(1);
            _buffer[_length++] = c;
            return this;
        }

        /// <summary>Marks the end of a row; a full buffer is written out.</summary>
        public void EndRow()
        {
            if (_length > _buffer.Length - 256)
                Flush();
        }

        public void Flush()
        {
            if (_length > 0)
                output.Write(_buffer, 0, _length);
            _length = 0;
            output.Flush();
        }

        private void Reserve(int n)
        {
            // A row is under 100 characters and EndRow keeps 256 free: the buffer never overflows mid-row.
            if (_length + n > _buffer.Length)
                throw new InvalidOperationException("output row longer than the buffer");
        }
    }

    private static readonly string[] HexDigits = [.. Enumerable.Range(0, 256).Select(b => $"0x{b:X2},")];

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

    /// <summary>Reads lines (LF or CRLF) into a fixed buffer: no allocation per line, and none for a huge line.</summary>
    private sealed class LineReader(TextReader reader)
    {
        private readonly char[] _buffer = new char[1 << 16];
        private int _start;
        private int _end;
        private bool _eof;

        /// <summary>The next line; false at the end, or (<paramref name="tooLong"/>) at a line over <see cref="MaxLineLength"/>.</summary>
        public bool TryReadLine(out ReadOnlySpan<char> line, out bool tooLong)
        {
            tooLong = false;
            while (true)
            {
                var pending = _buffer.AsSpan(_start, _end - _start);
                var nl = pending.IndexOf('\n');
                if (nl > MaxLineLength + 1 || (nl < 0 && pending.Length > MaxLineLength + 1))
                {
                    line = default;
                    tooLong = true;
                    return false;
                }

                if (nl >= 0)
                {
                    line = Trim(_buffer.AsSpan(_start, nl));
                    _start += nl + 1;
                    return Check(ref line, ref tooLong);
                }

                if (_eof)
                {
                    if (_start < _end)
                    {
                        line = Trim(_buffer.AsSpan(_start, _end - _start));
                        _start = _end;
                        return Check(ref line, ref tooLong);
                    }

                    line = default;
                    return false;
                }

                Fill();
            }
        }

        private static bool Check(ref ReadOnlySpan<char> line, ref bool tooLong)
        {
            if (line.Length <= MaxLineLength)
                return true;
            line = default;
            tooLong = true;
            return false;
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

            var n = reader.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
                _eof = true;
            else
                _end += n;
        }
    }
}
