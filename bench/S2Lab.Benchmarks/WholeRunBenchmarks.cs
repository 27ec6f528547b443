using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Attributes;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Benchmarks;

/// <summary>
/// The in-process part of <c>s2lab demo</c>: the embedded scenario under every design and variant (the runs go in
/// parallel, as in the command), without process start-up, parsing of the command line or rendering. The README's
/// figure is the whole process, measured by <c>s2lab bench --readme</c>. Run: <c>--filter '*DemoScenario*'</c>.
/// </summary>
[MemoryDiagnoser]
public class DemoScenarioBenchmarks
{
    private Scenario _demo = null!;

    [GlobalSetup]
    public void Setup() => _demo = DemoScenario.Load();

    /// <summary>Every design and variant of the demo, from hosts to scorecard.</summary>
    [Benchmark]
    public int RunDemoAllDesigns()
    {
        var report = ScenarioRunner.Run(_demo, "all");
        return report.Runs.Count;
    }
}

/// <summary>
/// The in-process part of <c>s2lab combine --batch</c> over 100,000 rows: the attribute combine of each row (the rows
/// of the README run: every FWB and HCR_EL2.CD setting, Linux's stage-1 bytes, every stage-2 MemAttr), without reading
/// and writing the CSV. Run: <c>--filter '*CombineBatch*'</c>.
/// </summary>
public class CombineBatchBenchmarks
{
    private const int Rows = 100_000;
    private CombineInput[] _inputs = null!;

    [GlobalSetup]
    public void Setup()
    {
        byte[] mair = [0x00, 0x04, 0x0C, 0x44, 0xFF, 0xBB];
        _inputs = new CombineInput[Rows];
        for (var i = 0; i < Rows; i++)
        {
            _inputs[i] = new CombineInput(mair[(i >> 6) % mair.Length], Shareability.ISH, (byte)((i >> 2) & 0xF), Shareability.ISH,
                Fwb: (i & 1) != 0, HcrCd: ((i >> 1) & 1) != 0)
            { Features = AttributeFeatures.Mte2 };
        }
    }

    /// <summary>100,000 combines (one operation each).</summary>
    [Benchmark(OperationsPerInvoke = Rows)]
    public int Combine100000Rows()
    {
        var sum = 0;
        foreach (ref readonly var input in _inputs.AsSpan())
            sum += AttributeCombiner.Combine(input).ParAttr;
        return sum;
    }
}
