using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Cli.Bench;
using S2Lab.Kernel.Kvm;

namespace S2Lab.Benchmarks;

/// <summary>
/// A 4K stage-2 fault end to end through the vCPU's allocation-free read (TLB miss, walk, user_mem_abort, map, retry),
/// then the MMU notifier zap, amortised (target: at most 500 ns and no allocation per fault).
/// </summary>
[MemoryDiagnoser]
public class GuestFault4K
{
    private const int Pages = 4096;
    private FaultRig _rig = null!;

    [GlobalSetup]
    public void Setup() => _rig = FaultRig.Create(Pages);

    [Benchmark(OperationsPerInvoke = Pages)]
    public void FaultEveryPageFastPath() => _rig.FaultAllThenZap();
}

/// <summary>
/// A guest read of a mapped page (a TLB hit, no fault) through the vCPU, against the stage-2 translation of the same
/// 256 pages served by the TLB (target: within 3x of that baseline, no allocation) and a bare TLB probe.
/// </summary>
[MemoryDiagnoser]
public class GuestAccessVsTlbHit
{
    private const int Pages = 256;
    private FaultRig _rig = null!;
    private Stage2Tlb _tlb = null!;
    private readonly byte[] _buf = new byte[8];

    [GlobalSetup]
    public void Setup()
    {
        _rig = FaultRig.Create(Pages);
        _rig.FaultAll();
        _tlb = new Stage2Tlb();
        for (var i = 0; i < Pages; i++)
            _tlb.Fill(1, _rig.Gpa + ((ulong)i << 12), new S2Descriptor(0x4000_0000_0000_07C3UL | ((ulong)i << 12)), 3);
    }

    /// <summary>The stage-2 translation of the same pages as the MMU does it, served by the VM's TLB (the baseline).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public ulong Stage2TranslateTlbHit()
    {
        ulong sum = 0;
        var mmu = _rig.Vm.Stage2;
        for (var i = 0; i < Pages; i++)
            sum += mmu.Translate(_rig.Gpa + ((ulong)i << 12) + 0x10, S2AccessKind.Read).Pa;
        return sum;
    }

    /// <summary>The bare TLB probe (no permission check, no output address).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong TlbLookupHit()
    {
        ulong sum = 0;
        for (var i = 0; i < Pages; i++)
        {
            if (_tlb.TryLookup(1, _rig.Gpa + ((ulong)i << 12) + 0x10, out var e))
                sum += e.Descriptor.Raw;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Pages)]
    public int GuestReadMappedPage()
    {
        var ok = 0;
        var vcpu = _rig.Vcpu;
        for (var i = 0; i < Pages; i++)
        {
            if (vcpu.Read(_rig.Gpa + ((ulong)i << 12) + 0x10, _buf).Outcome == GuestAccessOutcome.Completed)
                ok++;
        }

        return ok;
    }
}
