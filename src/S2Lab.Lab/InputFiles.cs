using System.Text;

namespace S2Lab.Lab;

/// <summary>
/// Reads the files s2lab is given (scenarios, host profiles) with a size limit, so that a huge or endless input (a
/// multi-gigabyte file, /dev/zero) is an error naming the file instead of an out-of-memory crash.
/// </summary>
public static class InputFiles
{
    /// <summary>The largest scenario file accepted (the demo is about 8 KiB).</summary>
    public const int MaxScenarioBytes = 4 << 20;

    /// <summary>The largest host profile accepted (s2lab probe writes about 5 KiB).</summary>
    public const int MaxHostProfileBytes = 1 << 20;

    /// <summary>
    /// The text of <paramref name="path"/> (UTF-8), or null with <paramref name="error"/> saying why: it cannot be read,
    /// or it is longer than <paramref name="maxBytes"/>. Reads at most one byte past the limit.
    /// </summary>
    public static string? TryReadText(string path, int maxBytes, out string? error)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            var buffer = new byte[Math.Min(maxBytes + 1L, stream.CanSeek ? stream.Length + 1 : maxBytes + 1L)];
            var total = 0;
            while (total < buffer.Length)
            {
                var n = stream.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                    break;
                total += n;
                if (total == buffer.Length && total <= maxBytes)
                    Array.Resize(ref buffer, (int)Math.Min(maxBytes + 1L, buffer.Length * 2L));
            }

            if (total > maxBytes)
            {
                error = $"the file is larger than the limit of {maxBytes / 1024} KiB";
                return null;
            }

            error = null;
            return new UTF8Encoding(false).GetString(buffer, 0, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            error = $"cannot read the file: {e.Message}";
            return null;
        }
    }
}

/// <summary>
/// Reads lines (LF or CRLF) like <see cref="TextReader.ReadLine"/>, but a line longer than the limit is reported instead
/// of being buffered whole: a 100 MB line costs the limit, not 200 MB.
/// </summary>
public sealed class BoundedLineReader(TextReader reader, int maxLineLength)
{
    private readonly char[] _buffer = new char[8192];
    private readonly StringBuilder _line = new();
    private int _pos;
    private int _len;

    /// <summary>The longest line accepted, in characters.</summary>
    public int MaxLineLength { get; } = maxLineLength;

    /// <summary>
    /// The next line (without its end), or null at the end of the input. <paramref name="tooLong"/> is true when the line
    /// passed the limit: it is then not returned, and the reader stops there.
    /// </summary>
    public string? ReadLine(out bool tooLong)
    {
        tooLong = false;
        _line.Clear();
        var any = false;
        while (true)
        {
            if (_pos == _len)
            {
                _len = reader.Read(_buffer, 0, _buffer.Length);
                _pos = 0;
                if (_len == 0)
                {
                    if (!any)
                        return null;
                    break;
                }
            }

            any = true;
            var span = _buffer.AsSpan(_pos, _len - _pos);
            var nl = span.IndexOf('\n');
            var take = nl < 0 ? span : span[..nl];
            // One character of slack for the '\r' of a CRLF line end.
            if (_line.Length + take.Length > MaxLineLength + 1)
            {
                tooLong = true;
                return null;
            }

            _line.Append(take);
            _pos += nl < 0 ? take.Length : nl + 1;
            if (nl >= 0)
                break;
        }

        if (_line.Length > 0 && _line[^1] == '\r')
            _line.Length--;
        if (_line.Length > MaxLineLength)
        {
            tooLong = true;
            return null;
        }

        return _line.ToString();
    }
}
