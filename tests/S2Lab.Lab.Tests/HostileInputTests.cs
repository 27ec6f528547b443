using CsCheck;
using S2Lab.Lab.Replay;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Every file reader is bounded: hostile input (deep nesting, huge scalars, huge lines, huge files, binary garbage,
/// empty files) gives an error naming file, line and field, never a crash or an unbounded allocation.
/// </summary>
public class HostileInputTests
{
    private static ScenarioError SingleError(string text, string file)
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, file));
        return Assert.Single(e.Errors);
    }

    [Theory]
    [InlineData("deep.yaml", "a: ", "[", "")]
    [InlineData("deep.yaml", "a:\n", "- ", "")]
    [InlineData("deep.json", "{\"a\": ", "[", "")]
    [InlineData("deep.json", "{\"a\": ", "{\"b\": ", "")]
    public void Forty_kilobytes_of_nesting_is_a_located_error_not_a_stack_overflow(string file, string head, string open, string tail)
    {
        // The issue's crash: a 40 KB file of nested brackets overflowed the stack (exit 134).
        var text = head + string.Concat(Enumerable.Repeat(open, 40_000 / open.Length)) + tail;
        if (open == "- ")
            text = head + string.Concat(Enumerable.Range(0, 2000).Select(i => new string(' ', i) + "-\n"));
        var err = SingleError(text, file);
        Assert.Equal(file, err.File);
        Assert.True(err.At.Line >= 1 && err.At.Column >= 1, err.ToString());
        Assert.StartsWith("a", err.Field, StringComparison.Ordinal);
        Assert.Contains($"deeper than {SyntaxReaders.MaxDepth} levels", err.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(".yaml")]
    [InlineData(".json")]
    public void The_depth_limit_is_exact(string ext)
    {
        // Depth n: the root mapping plus n - 1 nested lists.
        string Nested(int depth) => ext == ".json"
            ? "{\"a\": " + new string('[', depth - 1) + new string(']', depth - 1) + "}"
            : "a: " + new string('[', depth - 1) + new string(']', depth - 1);
        var atLimit = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Nested(SyntaxReaders.MaxDepth), "t" + ext));
        Assert.DoesNotContain(atLimit.Errors, e => e.Message.Contains("deeper", StringComparison.Ordinal));
        var over = SingleError(Nested(SyntaxReaders.MaxDepth + 1), "t" + ext);
        Assert.Contains("deeper", over.Message, StringComparison.Ordinal);
        // The node that crosses the limit is the innermost list: its column is the depth's bracket.
        Assert.Equal(1, over.At.Line);
        Assert.Equal((ext == ".json" ? 7 : 4) + SyntaxReaders.MaxDepth - 1, over.At.Column);
    }

    [Fact]
    public void Nested_aliases_that_expand_to_millions_of_nodes_are_an_error_at_the_alias()
    {
        // "Billion laughs": each level repeats the one before ten times; level 7 would be ten million nodes.
        var lines = new List<string> { "l0: &l0 [x, x, x, x, x, x, x, x, x, x]" };
        for (var i = 1; i <= 7; i++)
            lines.Add($"l{i}: &l{i} [{string.Join(", ", Enumerable.Repeat($"*l{i - 1}", 10))}]");
        var err = SingleError(string.Join('\n', lines), "laughs.yaml");
        Assert.Contains($"more than {SyntaxReaders.MaxNodes} nodes", err.Message, StringComparison.Ordinal);
        // The count is of the whole document: l0 .. l4 hold about 123,000 nodes, l5 (line 6) passes 2^20.
        Assert.Equal(6, err.At.Line);
        Assert.StartsWith("l5[", err.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void Aliases_within_the_node_limit_still_load()
    {
        var text = "a: &a [1, 2, 3]\nb: [*a, *a]\n";
        var map = Assert.IsType<MappingNode>(SyntaxReaders.ParseYaml(text, "t.yaml"));
        Assert.Same(((SequenceNode)map.Entries[1].Value).Items[0], map.Entries[0].Value);
    }

    [Theory]
    [InlineData("t.yaml", "name: {0}\n")]
    [InlineData("t.json", "{{\"name\": \"{0}\"}}")]
    [InlineData("t.json", "{{\"{0}\": 1}}")]
    public void A_huge_scalar_is_an_error_at_it(string file, string template)
    {
        var text = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, new string('x', 1_000_000));
        var err = SingleError(text, file);
        Assert.Equal(1, err.At.Line);
        Assert.Contains($"the limit is {SyntaxReaders.MaxScalarLength}", err.Message, StringComparison.Ordinal);
        Assert.True(err.ToString().Length < 200, "the error does not echo the value");
    }

    [Fact]
    public void A_scalar_at_the_limit_is_accepted_by_the_syntax_reader()
    {
        var node = SyntaxReaders.ParseYaml("description: " + new string('x', SyntaxReaders.MaxScalarLength), "t.yaml");
        var map = Assert.IsType<MappingNode>(node);
        Assert.Equal(SyntaxReaders.MaxScalarLength, Assert.IsType<ScalarNode>(map.Entries[0].Value).Text.Length);
    }

    [Theory]
    [InlineData("t.yaml")]
    [InlineData("t.json")]
    public void An_empty_file_says_so(string file)
    {
        var err = SingleError("", file);
        Assert.Equal(new SourceMark(1, 1), err.At);
        Assert.Contains("empty", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Binary_garbage_loads_or_fails_with_positioned_errors()
    {
        Gen.Select(Gen.Byte.Array[0, 2000], Gen.Bool).Sample((bytes, json) =>
        {
            var file = json ? "g.json" : "g.yaml";
            var text = System.Text.Encoding.UTF8.GetString(bytes);
            try
            {
                ScenarioLoader.Parse(text, file);
            }
            catch (ScenarioException e)
            {
                Assert.All(e.Errors, err =>
                {
                    Assert.Equal(file, err.File);
                    Assert.True(err.At.Line >= 1 && err.At.Column >= 1, err.ToString());
                });
            }
        }, iter: 300);
    }

    [Fact]
    public void A_file_over_the_size_limit_is_refused_before_parsing()
    {
        var tmp = Path.GetTempFileName();
        try
        {
            using (var f = File.OpenWrite(tmp))
                f.SetLength(InputFiles.MaxScenarioBytes + 1L);
            var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadFile(tmp));
            var err = Assert.Single(e.Errors);
            Assert.Equal(tmp, err.File);
            Assert.Contains("larger than the limit", err.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    /// <summary>Produces <paramref name="length"/> characters of one line without holding them, and counts what was read.</summary>
    private sealed class EndlessLine(long length, string after = "\n") : TextReader
    {
        private long _left = length;
        private int _afterPos;

        public long CharsRead { get; private set; }

        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            int n = 0;
            while (n < buffer.Length && _left > 0)
            {
                buffer[n++] = 'x';
                _left--;
            }

            while (n < buffer.Length && _left == 0 && _afterPos < after.Length)
                buffer[n++] = after[_afterPos++];
            CharsRead += n;
            return n;
        }
    }

    [Fact]
    public void A_100_MB_replay_line_is_an_error_after_reading_only_past_the_limit()
    {
        var input = new EndlessLine(100_000_000);
        var (file, error) = ReplayParser.Parse(input, "big.jsonl");
        Assert.Null(file);
        Assert.Equal(1, error!.Line);
        Assert.Contains($"longer than {ReplayParser.MaxLineLength}", error.Message, StringComparison.Ordinal);
        Assert.True(input.CharsRead < 1_000_000, $"read {input.CharsRead} characters of a line it had already rejected");
    }

    [Fact]
    public void The_bounded_line_reader_returns_lines_up_to_the_limit_with_either_line_end()
    {
        var r = new BoundedLineReader(new StringReader("abc\r\n" + new string('y', 10) + "\nlast"), 10);
        Assert.Equal("abc", r.ReadLine(out var tooLong));
        Assert.False(tooLong);
        Assert.Equal(new string('y', 10), r.ReadLine(out tooLong));
        Assert.Equal("last", r.ReadLine(out tooLong));
        Assert.Null(r.ReadLine(out tooLong));
        Assert.False(tooLong);
        var over = new BoundedLineReader(new StringReader(new string('z', 11) + "\n"), 10);
        Assert.Null(over.ReadLine(out tooLong));
        Assert.True(tooLong);
    }

    [Fact]
    public void Binary_garbage_replay_files_parse_or_name_a_line_never_throw()
    {
        Gen.Byte.Array[0, 3000].Sample(bytes =>
        {
            var (file, error) = ReplayParser.Parse(new StringReader(System.Text.Encoding.UTF8.GetString(bytes)), "g.jsonl");
            Assert.True(file is null != (error is null));
            if (error is not null)
                Assert.True(error.Line >= 1, error.ToString());
        }, iter: 500);
    }

    [Fact]
    public void A_nested_replay_line_is_an_error_naming_line_and_field()
    {
        var (_, error) = ReplayParser.Parse(new StringReader("{\"op\":\"create_vm\"}\n{\"op\":" + new string('[', 1000) + "\n"), "n.jsonl");
        Assert.Equal(2, error!.Line);
        Assert.StartsWith("op[0][0]", error.Field, StringComparison.Ordinal);
        Assert.Contains($"deeper than {SyntaxReaders.MaxDepth} levels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_nested_or_huge_host_profile_is_an_error_naming_the_file()
    {
        var tmp = Path.GetTempFileName();
        try
        {
            File.WriteAllText(tmp, "{\"format\": " + new string('[', 10_000));
            Assert.Null(HostProfileFile.TryLoad(tmp, out var error));
            Assert.StartsWith($"{tmp}:1:", error, StringComparison.Ordinal);
            Assert.Contains("format[0][0]", error, StringComparison.Ordinal);
            Assert.Contains("deeper than", error, StringComparison.Ordinal);
            using (var f = File.OpenWrite(tmp))
                f.SetLength(InputFiles.MaxHostProfileBytes + 1L);
            Assert.Null(HostProfileFile.TryLoad(tmp, out error));
            Assert.Contains("larger than the limit", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
