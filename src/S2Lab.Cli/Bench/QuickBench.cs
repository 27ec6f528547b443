using System.Diagnostics;
using System.Reflection;

namespace S2Lab.Cli.Bench;

/// <summary>One result line of <c>s2lab bench</c>: {"name","value","unit"}.</summary>
public sealed record BenchResult(string Name, double Value, string Unit);

/// <summary>Which runs include a measurement.</summary>
public enum BenchKind
{
    /// <summary>Part of the default quick run (a few seconds in total).</summary>
    Quick,

    /// <summary>Only with <c>--scale</c> (large, slow, memory hungry).</summary>
    Scale,
}

/// <summary>
/// One quick measurement of <c>s2lab bench</c>. To add one, write a class implementing this interface in
/// src/S2Lab.Cli/Bench/ (public or internal, with a parameterless constructor): <see cref="QuickBenchRegistry"/> finds it
/// by reflection, so no list needs editing. A class may report several related results (e.g. a time and a memory figure).
/// </summary>
public interface IQuickBench
{
    /// <summary>The name of the main result (used by <c>--filter</c> and for ordering).</summary>
    string Name { get; }

    BenchKind Kind { get; }

    /// <summary>Runs the measurement (warm-up included) and returns its results.</summary>
    IEnumerable<BenchResult> Run(BenchSettings settings);
}

/// <summary>Knobs shared by every measurement.</summary>
/// <param name="Iterations">Timed iterations (the best one is reported, as the machine is shared and noisy).</param>
/// <param name="Warmup">Untimed iterations first, at least (the <see cref="Rule"/> usually asks for more).</param>
public sealed record BenchSettings(int Iterations = 5, int Warmup = 2)
{
    /// <summary>When the warm-up ends (see <see cref="WarmupRule"/>).</summary>
    public WarmupRule Rule { get; init; } = WarmupRule.Default;
}

/// <summary>
/// The warm-up rule of every quick measurement: untimed (setup, body) calls are made until the JIT has finished with the
/// measured code, judged by counts rather than by a fixed time. The warm-up ends after the first call at which all hold:
/// <list type="number">
/// <item>at least <see cref="MinCalls"/> calls (and at least <see cref="BenchSettings.Warmup"/>): .NET moves a method from
/// tier 0 to instrumented tier 0 after 30 calls and to tier 1 after 30 more, so every method called once per body is
/// promoted;</item>
/// <item>at least <see cref="MinOps"/> operations of the body (calls times operations per call): methods called once per
/// operation, and loops promoted by on-stack replacement, are far past their thresholds;</item>
/// <item>the JIT has been quiet for the last <see cref="QuietCalls"/> calls and <see cref="QuietTime"/>: no method was
/// compiled (<see cref="System.Runtime.JitInfo.GetCompiledMethodCount"/>) in that window. The window is longer than the
/// runtime's 100 ms call-counting delay and holds more than 30 calls, so a method still waiting for promotion is
/// compiled inside it and restarts the window.</item>
/// </list>
/// If the JIT is not quiet after <see cref="MaxTime"/>, the warm-up stops anyway and the measurement says so
/// (<see cref="BenchMeasurement.JitQuiet"/>).
/// </summary>
public sealed record WarmupRule
{
    /// <summary>The rule used by <c>s2lab bench</c>.</summary>
    public static WarmupRule Default { get; } = new();

    /// <summary>Minimum untimed calls of the body.</summary>
    public int MinCalls { get; init; } = 64;

    /// <summary>Minimum operations performed by the untimed calls.</summary>
    public long MinOps { get; init; } = 100_000;

    /// <summary>Calls in the final window in which no method may be compiled.</summary>
    public int QuietCalls { get; init; } = 40;

    /// <summary>Minimum duration of that window.</summary>
    public TimeSpan QuietTime { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Longest warm-up of one measurement.</summary>
    public TimeSpan MaxTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Methods compiled so far by the JIT, on any thread (replaceable to test the rule).</summary>
    public Func<long> CompiledMethods { get; init; } = static () => System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: false);
}

/// <summary>What one timed measurement found.</summary>
/// <param name="BestSeconds">The best time of one body call among the timed iterations.</param>
/// <param name="WarmupCalls">Untimed calls made by the warm-up.</param>
/// <param name="WarmupOps">Operations performed by those calls.</param>
/// <param name="JitQuiet">Whether the warm-up ended by its rule (false: it hit <see cref="WarmupRule.MaxTime"/>).</param>
public sealed record BenchMeasurement(double BestSeconds, int WarmupCalls, long WarmupOps, bool JitQuiet);

/// <summary>Finds the measurements in this assembly.</summary>
public static class QuickBenchRegistry
{
    /// <summary>Every <see cref="IQuickBench"/> in the CLI assembly, in name order.</summary>
    public static IReadOnlyList<IQuickBench> All { get; } = typeof(QuickBenchRegistry).Assembly.GetTypes()
        .Where(t => typeof(IQuickBench).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false } &&
                    t.GetConstructor(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance, Type.EmptyTypes) is not null)
        .Select(t => (IQuickBench)Activator.CreateInstance(t, nonPublic: true)!)
        .OrderBy(b => b.Name, StringComparer.Ordinal)
        .ToList();
}

/// <summary>Timing helpers: a warm-up by <see cref="WarmupRule"/>, a few timed iterations, the best time (least disturbed by other processes).</summary>
public static class BenchTimer
{
    /// <summary>
    /// Warms up by <see cref="BenchSettings.Rule"/>, then times <see cref="BenchSettings.Iterations"/> calls of
    /// <paramref name="body"/>. Every call, warm-up or timed, gets a fresh state from <paramref name="setup"/>, which is
    /// not timed: a map is always timed into a table that <paramref name="setup"/> has just built.
    /// </summary>
    /// <param name="s">Iterations and warm-up rule.</param>
    /// <param name="opsPerCall">Operations one body call performs (for <see cref="WarmupRule.MinOps"/>).</param>
    /// <param name="setup">Builds the state of one call (untimed).</param>
    /// <param name="body">The timed work.</param>
    public static BenchMeasurement Measure<TState>(BenchSettings s, long opsPerCall, Func<TState> setup, Action<TState> body)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(s.Iterations, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(opsPerCall, 1);
        var rule = s.Rule;
        int minCalls = Math.Max(rule.MinCalls, s.Warmup);
        long start = Stopwatch.GetTimestamp();
        long compiled = rule.CompiledMethods();
        int calls = 0, quietSince = 0;
        long ops = 0, quietStart = start;
        bool quiet;
        while (true)
        {
            body(setup());
            calls++;
            ops += opsPerCall;
            long now = Stopwatch.GetTimestamp();
            long c = rule.CompiledMethods();
            if (c != compiled)
            {
                compiled = c;
                quietSince = calls;
                quietStart = now;
            }

            quiet = calls - quietSince >= rule.QuietCalls && Stopwatch.GetElapsedTime(quietStart, now) >= rule.QuietTime;
            if ((calls >= minCalls && ops >= rule.MinOps && quiet) || Stopwatch.GetElapsedTime(start, now) >= rule.MaxTime)
            {
                break;
            }
        }

        double best = double.MaxValue;
        for (int i = 0; i < s.Iterations; i++)
        {
            var state = setup();
            long t0 = Stopwatch.GetTimestamp();
            body(state);
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }

        return new BenchMeasurement(best, calls, ops, quiet);
    }

    /// <summary>
    /// Runs <paramref name="setup"/> (untimed) and <paramref name="body"/> (timed) for the warm-up and timed iterations and
    /// returns the best time of one body run in seconds. The operations per run are not known here, so
    /// <see cref="WarmupRule.MinOps"/> does not apply (prefer <see cref="Measure"/>).
    /// </summary>
    public static double BestSeconds(BenchSettings s, Action setup, Action body) =>
        Measure(s with { Rule = s.Rule with { MinOps = 0 } }, 1, () => { setup(); return 0; }, _ => body()).BestSeconds;

    /// <summary>Best nanoseconds per operation of <paramref name="body"/>, which performs <paramref name="opsPerRun"/> operations.</summary>
    public static double BestNsPerOp(BenchSettings s, long opsPerRun, Action body) =>
        Measure(s, opsPerRun, static () => 0, _ => body()).BestSeconds * 1e9 / opsPerRun;

    /// <summary>Peak resident set of this process (VmHWM on Linux), in bytes.</summary>
    public static long PeakWorkingSetBytes()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.PeakWorkingSet64;
    }
}
