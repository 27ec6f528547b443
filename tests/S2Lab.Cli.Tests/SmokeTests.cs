namespace S2Lab.Cli.Tests;

public class SmokeTests
{
    [Fact]
    public void Demo_command_exits_zero()
    {
        Assert.Equal(0, Program.BuildRoot().Parse(["demo"]).Invoke());
    }
}
