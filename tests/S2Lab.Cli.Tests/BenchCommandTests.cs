using System.CommandLine;

namespace S2Lab.Cli.Tests;

/// <summary><c>s2lab bench</c>, run in-process (no timings are asserted: only what is listed and the usage errors).</summary>
public class BenchCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void List_names_the_measurements_the_issues_ask_for()
    {
        var (exit, output, _) = Run("bench", "--list");
        Assert.Equal(ExitCodes.Ok, exit);
        foreach (var name in new[] { "table_bytes_per_gib_4k", "map_4k_pages_per_s", "tlb_hit_ns", "walk_ns", "kernel_memslot_lookup_32767_ns", "kernel_stage2_fault_4k_anon_ns" })
            Assert.Contains(name, output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--iterations", "0")]
    [InlineData("--filter", "no-such-measurement")]
    public void Usage_errors_exit_2_on_standard_error(params string[] extra)
    {
        var (exit, output, error) = Run(["bench", .. extra]);
        Assert.Equal(ExitCodes.BadInput, exit);
        Assert.Equal("", output);
        Assert.StartsWith("s2lab bench: ", error, StringComparison.Ordinal);
    }
}
