using BenchmarkDotNet.Attributes;
using S2Lab.Cli.Bench;
using S2Lab.Kernel.Kvm;

namespace S2Lab.Benchmarks;

/// <summary>gfn -> memslot lookup with 32,767 slots (target: at most 50 ns).</summary>
[MemoryDiagnoser]
public class KernelMemslotLookup
{
    private const int Lookups = 4096;
    private KernelBenchSetup.FullVm _vm = null!;
    private ulong[] _gfns = null!;

    private KernelBenchSetup.FullVm _shuffled = null!;
    private ulong[] _gfnsHalfMisses = null!;

    [GlobalSetup]
    public void Setup()
    {
        _vm = KernelBenchSetup.VmWithSlots(32767);
        _gfns = KernelBenchSetup.RandomGfns(_vm, Lookups, seed: 1);
        _shuffled = KernelBenchSetup.VmWithSlots(32767, shuffleSeed: 2);
        _gfnsHalfMisses = KernelBenchSetup.RandomGfnsHalfMisses(_shuffled, Lookups, seed: 3);
        _calibration = Enumerable.Range(0, 32767).Select(i => KernelBenchSetup.SlotBaseGfn(i)).ToArray();
    }

    /// <summary>
    /// Calibration: Array.BinarySearch over 32,767 sorted ulongs with the same random keys, the floor of any
    /// comparison search on this machine (reported next to the lookup, since the machine is shared and loaded).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Lookups, Baseline = true)]
    public int BinarySearchFloor()
    {
        var a = _calibration;
        var sum = 0;
        foreach (var g in _gfns)
            sum += Array.BinarySearch(a, g);
        return sum;
    }

    private ulong[] _calibration = null!;

    /// <summary>Random gfns (each hits a different slot, so the last-used cache rarely helps).</summary>
    [Benchmark(OperationsPerInvoke = Lookups)]
    public int RandomGfnToMemslot()
    {
        var set = _vm.Vm.Memslots();
        var sum = 0;
        foreach (var g in _gfns)
            sum += set.Find(g)!.Id;
        return sum;
    }

    /// <summary>
    /// The same lookups on a VM whose slots were created in random order (index leaves partly filled, not packed),
    /// half of them for the page after a slot (a miss, null).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Lookups)]
    public int ShuffledCreationRandomGfnHalfMisses()
    {
        var set = _shuffled.Vm.Memslots();
        var sum = 0;
        foreach (var g in _gfnsHalfMisses)
            sum += set.Find(g)?.Id ?? -1;
        return sum;
    }
}

/// <summary>Create and delete one slot with 32,766 others present (target: at most 10 us for the pair).</summary>
[MemoryDiagnoser]
public class KernelMemslotCreateDelete
{
    private KernelBenchSetup.FullVm _vm = null!;

    [GlobalSetup]
    public void Setup() => _vm = KernelBenchSetup.VmWithSlots(32766);

    [Benchmark]
    public int CreateThenDelete() => KernelBenchSetup.CreateDeleteOnce(_vm);
}

/// <summary>A 4K stage-2 translation fault on anonymous memory, end to end (target: at most 500 ns).</summary>
[MemoryDiagnoser]
public class KernelStage2Fault
{
    private const int Pages = 4096;
    private FaultRig _rig = null!;

    [GlobalSetup]
    public void Setup() => _rig = FaultRig.Create(Pages);

    /// <summary>
    /// The guest reads each of 4096 pages once (each a translation fault: memslot, VMA, host pte, design, table map),
    /// then the VMM's MMU notifier zaps the range (included, amortised over the pages).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public void FaultEveryPage()
    {
        _rig.FaultAllWithResults();
        _rig.Zap();
    }
}
