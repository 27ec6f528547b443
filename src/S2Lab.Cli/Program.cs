using System.CommandLine;
using S2Lab.Cli.Commands;

namespace S2Lab.Cli;

/// <summary>Entry point of the <c>s2lab</c> command. Each sub-command lives in its own file under Commands/.</summary>
public static class Program
{
    public static int Main(string[] args) => Run(args);

    /// <summary>
    /// Parses and runs one command line. A parse error (unknown command or option, missing or ill-typed value) is a
    /// usage error: it is reported on standard error and exits with 2, like every other usage error of s2lab.
    /// </summary>
    public static int Run(string[] args, InvocationConfiguration? configuration = null)
    {
        var parse = BuildRoot().Parse(args);
        if (parse.Errors.Count > 0)
        {
            var stderr = configuration?.Error ?? Console.Error;
            foreach (var error in parse.Errors)
            {
                stderr.WriteLine($"s2lab: {error.Message}");
            }

            // Every command takes --format json now; the old --json flag gets a pointer rather than just "unrecognized".
            if (args.Contains("--json", StringComparer.Ordinal))
                stderr.WriteLine("s2lab: --json is written --format json (the same option on every command).");

            stderr.WriteLine("Run 's2lab --help', or 's2lab COMMAND --help', for usage.");
            return ExitCodes.BadInput;
        }

        return configuration is null ? parse.Invoke() : parse.Invoke(configuration);
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
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(ExplainCommand.Create());
        root.Subcommands.Add(OracleCommand.Create());
        return root;
    }
}
