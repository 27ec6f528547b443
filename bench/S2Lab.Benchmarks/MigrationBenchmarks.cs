using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using S2Lab.Cli.Bench;
using S2Lab.Vmm;
using static S2Lab.Cli.Bench.MigrationRig;

namespace S2Lab.Benchmarks;

/// <summary>
/// Migration of a large, mostly idle VM: RAM of <see cref="RamGiB"/> (with a GH200's 96 GiB usemem at 480 GiB), 4096
/// RAM pages written before, 64 rewritten in each of 3 pre-copy rounds. Each iteration starts a fresh VM (untimed) and
/// migrates it once. Targets for 480 GiB: under 3 s CPU (see <c>s2lab bench --scale</c> for CPU time and peak RSS).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class MigrateLargeVm
{
    private VirtualMachine _vm = null!;
    private VmmHost _destination = null!;

    [Params(64, 480)]
    public int RamGiB { get; set; }

    private ulong Ram => (ulong)RamGiB * GiB;

    private ulong Hbm => RamGiB >= 480 ? 96 * GiB : 0;

    [IterationSetup]
    public void Setup()
    {
        _vm = Start(NewHost("src", Ram, Hbm), Config(Ram, Hbm));
        WritePages(Vcpu(_vm), RamGpa, 0, 4096, (Ram / PageSize) / 4096, 0);
        _destination = NewHost("dst", Ram, Hbm);
    }

    [Benchmark]
    public VirtualMachine Migrate() => MigrationRig.Migrate(_vm, _destination, new DirtyingGuest(64, 1, 3), new MigrationOptions());
}

/// <summary>
/// Migration cost per page the guest wrote: a 1 GiB VM with every other page written (131,072 pages, 8 bytes each)
/// migrates (target: under 20 us per written page).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class MigratePerWrittenPage
{
    private const ulong Ram = GiB;
    private const int Written = (int)(Ram / PageSize / 2);
    private VirtualMachine _vm = null!;
    private VmmHost _destination = null!;

    [IterationSetup]
    public void Setup()
    {
        _vm = Start(NewHost("src", Ram, 0), Config(Ram, 0));
        WritePages(Vcpu(_vm), RamGpa, 0, Written, 2, 0);
        _destination = NewHost("dst", Ram, 0);
    }

    [Benchmark(OperationsPerInvoke = Written)]
    public VirtualMachine Migrate() => MigrationRig.Migrate(_vm, _destination, new DirtyingGuest(0, 1, 0), new MigrationOptions());
}
