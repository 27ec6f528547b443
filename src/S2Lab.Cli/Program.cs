using System.CommandLine;
using S2Lab.Cli.Commands;

namespace S2Lab.Cli;

/// <summary>Entry point of the <c>s2lab</c> command. Each sub-command lives in its own file under Commands/.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = BuildRoot();
        return root.Parse(args).Invoke();
    }

    /// <summary>The full command tree; tests call this to run commands in-process.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("S2Lab: an executable model of KVM arm64 stage-2 memory types (FWB, PFNMAP device memory, migration).");
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(CombineCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(MemslotsCommand.Create());
        return root;
    }
}
