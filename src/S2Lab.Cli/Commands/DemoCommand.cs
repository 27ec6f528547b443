using System.CommandLine;

namespace S2Lab.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Run the embedded default scenario: the March 2025 debate, every design, two hosts.");
        cmd.SetAction(_ =>
        {
            Console.WriteLine("s2lab demo: not built yet.");
            return 0;
        });
        return cmd;
    }
}
