using System.CommandLine;
using CsCheck;
using S2Lab.Arch.Attributes;

namespace S2Lab.Cli.Tests;

/// <summary>probe on things that are not KVM, and combine --batch streaming in constant memory.</summary>
public class InputSafetyTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    public static TheoryData<string, string> NotKvm()
    {
        var regular = Path.GetTempFileName();
        File.WriteAllText(regular, "not a device");
        return new()
        {
            { "/dev/null", "not a KVM device" },
            { regular, "not a KVM device" },
            { Path.GetTempPath(), "is a directory" },
            { "/nonexistent/kvm", "does not exist" },
        };
    }

    [Theory]
    [MemberData(nameof(NotKvm))]
    public void Probe_of_something_that_is_not_KVM_exits_3_and_writes_no_profile(string device, string why)
    {
        var profile = Path.Combine(Path.GetTempPath(), $"s2lab-probe-{Guid.NewGuid():N}.json");
        var (exit, output, error) = Run("probe", "--device", device, "-o", profile);
        Assert.Equal(3, exit);
        Assert.Equal("", output);
        Assert.Contains(device, error, StringComparison.Ordinal);
        Assert.Contains(why, error, StringComparison.Ordinal);
        Assert.False(File.Exists(profile));
        Assert.DoesNotContain("API version", error, StringComparison.Ordinal);
    }

    private const string Header = "fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh";
    private const string Row = "1,0,0x04,ISH,0b0110,ISH";

    /// <summary>Serves a header and rows one at a time, recording how much output existed when each row was read.</summary>
    private sealed class RowSource(int rows, string? badRowAt = null, int badIndex = -1) : TextReader
    {
        private int _next = -1;
        private string _pending = "";
        private int _pos;

        public Func<long>? OutputLength { get; init; }

        public long OutputSeenAtLastRow { get; private set; }

        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            if (_pos == _pending.Length)
            {
                if (_next >= rows)
                    return 0;
                _pending = _next < 0 ? Header + "\n" : (_next == badIndex ? badRowAt! : Row) + "\n";
                _pos = 0;
                _next++;
                if (_next == rows)
                    OutputSeenAtLastRow = OutputLength?.Invoke() ?? 0;
            }

            // One line per call: the batch cannot read ahead of what it has been given.
            var n = Math.Min(buffer.Length, _pending.Length - _pos);
            _pending.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
    }

    [Fact]
    public void Combine_batch_writes_rows_while_it_is_still_reading()
    {
        var output = new StringWriter();
        var source = new RowSource(20_000) { OutputLength = () => output.GetStringBuilder().Length };
        Assert.Null(CombineBatch.Run(source, output, AttributeFeatures.Mte2, out var written));
        Assert.Equal(20_000, written);
        // 20,000 rows are ~660 KB of output; when the last row was read most of it had already been handed on.
        Assert.True(source.OutputSeenAtLastRow > output.GetStringBuilder().Length / 2,
            $"only {source.OutputSeenAtLastRow} of {output.GetStringBuilder().Length} characters were written before the input ended");
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(20_001, lines.Length);
        Assert.All(lines.Skip(1), l => Assert.Equal("0xFF,ISH,Normal oWB.RWA iWB.RWA", l));
    }

    [Fact]
    public void Combine_batch_from_a_pipe_keeps_the_rows_before_a_bad_one_and_names_its_line_and_field()
    {
        var output = new StringWriter();
        var error = CombineBatch.Run(new RowSource(10, "1,0,0x04,XSH,0b0110,ISH", badIndex: 7), output, AttributeFeatures.Mte2, out var written);
        Assert.NotNull(error);
        Assert.Equal(9, error!.Line); // header is line 1, row index 7 is line 9
        Assert.Equal("s1_sh", error.Field);
        Assert.Equal(7, written);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(8, lines.Length);
        Assert.Equal(CombineBatch.OutputHeader, lines[0]);
        // Whole rows only: the output ends with a line end.
        Assert.EndsWith("\n", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Combine_batch_of_a_file_validates_first_so_a_bad_last_row_leaves_no_output()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-batch-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, Header + "\n" + string.Concat(Enumerable.Repeat(Row + "\n", 5000)) + "1,0,0x04,ISH,0b0110\n");
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:5002:", error, StringComparison.Ordinal);
            Assert.DoesNotContain("were written", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A header, then one line of <paramref name="length"/> characters, generated as it is read.</summary>
    private sealed class HugeLine(long length) : TextReader
    {
        private readonly string _header = Header + "\n";
        private long _served;

        public long CharsRead => _served;

        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            var n = 0;
            while (n < buffer.Length && _served < _header.Length + length)
            {
                buffer[n++] = _served < _header.Length ? _header[(int)_served] : '1';
                _served++;
            }

            return n;
        }
    }

    [Fact]
    public void Combine_batch_rejects_a_100_MB_line_after_reading_little_of_it()
    {
        var input = new HugeLine(100_000_000);
        var output = new StringWriter();
        var error = CombineBatch.Run(input, output, AttributeFeatures.Mte2, out _);
        Assert.Equal(2, error!.Line);
        Assert.Contains($"longer than {CombineBatch.MaxLineLength}", error.Message, StringComparison.Ordinal);
        Assert.True(input.CharsRead < 1_000_000, $"read {input.CharsRead} characters");
    }

    [Fact]
    public void Combine_batch_of_random_bytes_combines_or_names_a_line_never_throws()
    {
        Gen.Byte.Array[0, 2000].Sample(bytes =>
        {
            var text = Header + "\n" + System.Text.Encoding.Latin1.GetString(bytes);
            var error = CombineBatch.Run(new StringReader(text), new StringWriter(), AttributeFeatures.Mte2, out _);
            if (error is not null)
                Assert.True(error.Line >= 2, error.ToString());
        }, iter: 500);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\0\0\0\u00ff\u00fe garbage")]
    public void Combine_batch_of_an_empty_or_binary_file_names_line_1(string content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-batch-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, content);
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:1:", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>s2lab run on hostile scenario files: exit 2 with located errors, and a readable amount of them.</summary>
public class HostileScenarioFileTests
{
    [Fact]
    public void A_40_KB_file_of_brackets_exits_2_with_file_line_column_and_field()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-deep-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "steps: " + new string('[', 40_000) + "\n");
        try
        {
            var (exit, output, err) = CliRunner.Run("run", path);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:1:", err, StringComparison.Ordinal);
            Assert.Contains(": steps[0][0]", err, StringComparison.Ordinal);
            Assert.Contains("nothing was run", err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Thousands_of_errors_print_the_first_hundred_and_the_count()
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-many-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "name: many\nhosts:\n" + string.Concat(Enumerable.Range(0, 500).Select(i => $"  h{i}: {{ cpu: nope, design: linux-6.17 }}\n")) + "vms: {}\nsteps: []\n");
        try
        {
            var (exit, _, err) = CliRunner.Run("run", path);
            Assert.Equal(2, exit);
            var lines = err.TrimEnd('\n').Split('\n');
            Assert.Equal(Commands.RunCommand.MaxErrorsShown + 2, lines.Length);
            Assert.Matches(@"^\.\.\. and \d+ more$", lines[^2]);
            Assert.Matches(@"^s2lab run: \d+ error\(s\) in ", lines[^1]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
