using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Cli.Bench;

/// <summary>Shared set-up of the kernel-model measurements (same shapes as bench/S2Lab.Benchmarks/Kernel*.cs).</summary>
internal static class KernelBench
{
    public const ulong SlotStride = 0x10_0000;

    public static ModelKvmVm VmWithSlots(int slots)
    {
        var kvm = new ModelKvmSystem(Host.Create("bench", "neoverse-v2", "linux-6.17"));
        var vm = kvm.CreateModelVm(48).Value;
        for (var i = 0; i < slots; i++)
        {
            var e = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2((uint)i, 0, (ulong)i * SlotStride, 0x1000, 0x1000_0000_0000 + ((ulong)i << 12), 0, 0));
            if (e != Errno.None)
                throw new InvalidOperationException($"slot {i}: {e}");
        }
        return vm;
    }
}

/// <summary>gfn -> memslot with 32,767 slots, random gfns (target: at most 50 ns).</summary>
internal sealed class KernelMemslotLookupNs : IQuickBench
{
    public string Name => "kernel_memslot_lookup_32767_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var vm = KernelBench.VmWithSlots(32767);
        var set = vm.Memslots();
        var rnd = new Random(1);
        var gfns = Enumerable.Range(0, 1 << 16).Select(_ => ((ulong)rnd.Next(32767) * KernelBench.SlotStride) >> 12).ToArray();
        long sink = 0;
        var ns = BenchTimer.BestNsPerOp(settings, gfns.Length, () =>
        {
            foreach (var g in gfns)
                sink += set.Find(g)!.Id;
        });
        GC.KeepAlive(sink);
        yield return new BenchResult(Name, ns, "ns");
    }
}

/// <summary>Create and delete one slot with 32,766 others present (target: at most 10 us for the pair).</summary>
internal sealed class KernelMemslotCreateDeleteNs : IQuickBench
{
    public string Name => "kernel_memslot_create_delete_32767_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        var vm = KernelBench.VmWithSlots(32766);
        const int n = 4096;
        var gpa = 32766UL * KernelBench.SlotStride;
        var ns = BenchTimer.BestNsPerOp(settings, n, () =>
        {
            for (var i = 0; i < n; i++)
            {
                _ = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(32766, 0, gpa, 0x1000, 0x2000_0000_0000, 0, 0));
                _ = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(32766, 0, gpa, 0, 0x2000_0000_0000, 0, 0));
            }
        });
        yield return new BenchResult(Name, ns, "ns");
    }
}

/// <summary>A 4K stage-2 fault on anonymous memory, end to end through a guest read (target: at most 500 ns).</summary>
internal sealed class KernelStage2FaultNs : IQuickBench
{
    public string Name => "kernel_stage2_fault_4k_anon_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const int pages = 4096;
        var rig = FaultRig.Create(pages);
        var ns = BenchTimer.BestNsPerOp(settings, pages, () =>
        {
            rig.FaultAllWithResults();
            rig.Zap();
        });
        yield return new BenchResult(Name, ns, "ns");
    }
}
