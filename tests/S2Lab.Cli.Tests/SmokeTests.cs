namespace S2Lab.Cli.Tests;

public class SmokeTests
{
    [Fact]
    public void Demo_command_exits_zero()
    {
        Assert.Equal(0, Program.BuildRoot().Parse(["demo"]).Invoke());
    }

    [Theory]
    [InlineData("no-such-command")]
    [InlineData("probe", "--no-such-option")]
    [InlineData("bench", "--iterations", "many")]
    public void Parse_errors_are_usage_errors_with_exit_code_2(params string[] args)
    {
        var err = new StringWriter();
        var saved = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.Equal(2, Program.Run(args));
        }
        finally
        {
            Console.SetError(saved);
        }

        Assert.Contains("s2lab:", err.ToString());
    }
}
