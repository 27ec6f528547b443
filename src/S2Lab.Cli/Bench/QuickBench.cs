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
/// <param name="Warmup">Untimed iterations first.</param>
public sealed record BenchSettings(int Iterations = 5, int Warmup = 2);

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

/// <summary>Timing helpers: warm-up, a few iterations, best time (least disturbed by other processes).</summary>
public static class BenchTimer
{
    /// <summary>
    /// Runs <paramref name="setup"/> (untimed) and <paramref name="body"/> (timed) for the warm-up and timed iterations and
    /// returns the best time of one body run in seconds.
    /// </summary>
    public static double BestSeconds(BenchSettings s, Action setup, Action body)
    {
        // Warm-up: the configured iterations, and at least MinWarmup of running time, so that the JIT has moved the
        // hot methods to optimized (tier-1, PGO) code before anything is timed.
        long warmStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < s.Warmup || (Stopwatch.GetElapsedTime(warmStart) < MinWarmup && i < 10_000); i++)
        {
            setup();
            body();
        }

        double best = double.MaxValue;
        for (int i = 0; i < s.Iterations; i++)
        {
            setup();
            long t0 = Stopwatch.GetTimestamp();
            body();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }

        return best;
    }

    /// <summary>Minimum warm-up time per measurement.</summary>
    public static TimeSpan MinWarmup { get; set; } = TimeSpan.FromMilliseconds(400);

    /// <summary>Best nanoseconds per operation of <paramref name="body"/>, which performs <paramref name="opsPerRun"/> operations.</summary>
    public static double BestNsPerOp(BenchSettings s, long opsPerRun, Action body) =>
        BestSeconds(s, static () => { }, body) * 1e9 / opsPerRun;

    /// <summary>Peak resident set of this process (VmHWM on Linux), in bytes.</summary>
    public static long PeakWorkingSetBytes()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.PeakWorkingSet64;
    }
}
