
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Vmm;
using static S2Lab.Cli.Bench.MigrationRig;

namespace S2Lab.Cli.Bench;

/// <summary>
/// CPU time, allocation and resident memory of one run of an action. The resident peak is the kernel's VmHWM, reset
/// just before the run (writing 5 to /proc/self/clear_refs), so it is this run's peak, runtime and earlier garbage
/// included; where the reset is not allowed, the process's peak so far is reported and marked as such.
/// </summary>
internal sealed record RunCost(double CpuSeconds, double WallSeconds, long AllocatedBytes, long RssBeforeBytes, long PeakRssBytes, bool PeakIsThisRun)
{
    public static RunCost Measure(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var reset = ResetPeak();
        var rss = Status("VmRSS:");
        using var proc = System.Diagnostics.Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var alloc0 = GC.GetTotalAllocatedBytes(precise: true);
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        action();
        var wall = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        proc.Refresh();
        var cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        var alloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
        var peak = Status("VmHWM:");
        return new RunCost(cpu, wall, alloc, rss, peak, reset);
    }

    private static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A "Name: N kB" line of /proc/self/status, in bytes (0 where there is none).</summary>
    private static long Status(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }

    /// <summary>The results under <paramref name="prefix"/>: CPU seconds, wall seconds, allocated MiB, resident MiB before and at peak.</summary>
    public IEnumerable<BenchResult> Results(string prefix)
    {
        yield return new BenchResult($"{prefix}_cpu_s", CpuSeconds, "s");
        yield return new BenchResult($"{prefix}_wall_s", WallSeconds, "s");
        yield return new BenchResult($"{prefix}_allocated_mib", AllocatedBytes / (double)MiB, "MiB");
        yield return new BenchResult($"{prefix}_rss_before_mib", RssBeforeBytes / (double)MiB, "MiB");
        yield return new BenchResult(PeakIsThisRun ? $"{prefix}_peak_rss_mib" : $"{prefix}_process_peak_rss_mib", PeakRssBytes / (double)MiB, "MiB");
    }
}

/// <summary>
/// Migration of a GH200-sized VM: 480 GiB of RAM and 96 GiB of usemem. The guest has written 4096 RAM pages and 64
/// usemem pages before, and rewrites 64 RAM pages in each of 3 pre-copy rounds (targets: under 3 s CPU, under 300 MiB
/// peak resident).
/// </summary>
internal sealed class MigrationGh200 : IQuickBench
{
    public string Name => "migration_480g_96g_cpu_s";

    public BenchKind Kind => BenchKind.Scale;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const ulong ram = 480 * GiB, hbm = 96 * GiB;
        VirtualMachine? dest = null;
        var cost = RunCost.Measure(() =>
        {
            var vm = Start(NewHost("src", ram, hbm), Config(ram, hbm));
            var vcpu = Vcpu(vm);
            WritePages(vcpu, RamGpa, 0, 4096, (ram / PageSize) / 4096, 0);
            WritePages(vcpu, HbmGpa(ram), 0, 64, (hbm / PageSize) / 64, 0);
            dest = MigrationRig.Migrate(vm, NewHost("dst", ram, hbm), new DirtyingGuest(64, 1, 3), new MigrationOptions());
        });
        // Outside the measurement: every value arrived (the last rewritten pages, the rest from before).
        var dv = Vcpu(dest!);
        Verify(dv, RamGpa, 0, 64, 1, 3);
        Verify(dv, RamGpa, (ram / PageSize) / 4096, 4095, (ram / PageSize) / 4096, 0); // page 0 was rewritten
        Verify(dv, HbmGpa(ram), 0, 64, (hbm / PageSize) / 64, 0);
        return cost.Results("migration_480g_96g");
    }
}

/// <summary>A 4 TiB VM starts, the guest writes 1024 pages spread over its RAM, and it migrates.</summary>
internal sealed class Migration4T : IQuickBench
{
    public string Name => "migration_4t_cpu_s";

    public BenchKind Kind => BenchKind.Scale;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const ulong ram = 4096 * GiB;
        const ulong stride = (ram / PageSize) / 1024;
        VirtualMachine? dest = null;
        var cost = RunCost.Measure(() =>
        {
            var vm = Start(NewHost("src", ram, 0), Config(ram, 0));
            WritePages(Vcpu(vm), RamGpa, 0, 1024, stride, 0);
            dest = MigrationRig.Migrate(vm, NewHost("dst", ram, 0), new DirtyingGuest(0, 1, 0), new MigrationOptions());
        });
        Verify(Vcpu(dest!), RamGpa, 0, 1024, stride, 0);
        return cost.Results("migration_4t");
    }
}

/// <summary>
/// A guest that wrote every other page of a 64 GiB VM (8 M pages, one 8-byte value each) migrates: time per written
/// page (target: under 20 us), and the memory the model holds for the contents of both hosts (proportional to the
/// pages written).
/// </summary>
internal sealed class MigrationHalfWritten64G : IQuickBench
{
    public string Name => "migration_64g_half_written_us_per_page";

    public BenchKind Kind => BenchKind.Scale;

    public IEnumerable<BenchResult> Run(BenchSettings settings) => Measure(64 * GiB, "migration_64g_half_written");

    internal static IEnumerable<BenchResult> Measure(ulong ram, string prefix)
    {
        var pages = ram / PageSize / 2;
        var src = NewHost("src", ram, 0);
        var dst = NewHost("dst", ram, 0);
        var vm = Start(src, Config(ram, 0));
        var write = RunCost.Measure(() => WritePages(Vcpu(vm), RamGpa, 0, pages, 2, 0));
        VirtualMachine? dest = null;
        var cost = RunCost.Measure(() => dest = MigrationRig.Migrate(vm, dst, new DirtyingGuest(0, 1, 0), new MigrationOptions()));
        Verify(Vcpu(dest!), RamGpa, 0, pages, 2, 0);
        var contents = Model(src).Memory.Mm.Memory.ContentBytes + Model(dst).Memory.Mm.Memory.ContentBytes;
        yield return new BenchResult($"{prefix}_us_per_page", cost.CpuSeconds * 1e6 / pages, "us");
        yield return new BenchResult($"{prefix}_guest_write_ns_per_page", write.CpuSeconds * 1e9 / pages, "ns");
        yield return new BenchResult($"{prefix}_pages_written", pages, "pages");
        yield return new BenchResult($"{prefix}_contents_bytes_per_page", contents / (double)pages, "B");
        foreach (var r in cost.Results(prefix))
            yield return r;
    }
}

/// <summary>The per-written-page cost on a 1 GiB VM (half its pages written), for the quick run.</summary>
internal sealed class MigrationHalfWritten1G : IQuickBench
{
    public string Name => "migration_1g_half_written_us_per_page";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings) => MigrationHalfWritten64G.Measure(GiB, "migration_1g_half_written");
}

/// <summary>
/// A 64 MiB VM whose guest wrote all of its RAM before the migration and rewrites all of it in each of 50 pre-copy
/// rounds: the managed heap after round 1 and after round 50 (forced collections), and the bytes allocated in round 2
/// and in round 50. Round N must cost no more than round 1.
/// </summary>
internal sealed class MigrationRoundMemory : IQuickBench
{
    public string Name => "migration_round_heap_growth_kib";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const ulong ram = 64 * MiB;
        const int rounds = 50;
        var heap = new long[rounds + 1];
        var alloc = new long[rounds + 1];
        var vm = Start(NewHost("src", ram, 0), Config(ram, 0));
        // All of RAM holds data before the migration starts, so the first pass fills the destination.
        WritePages(Vcpu(vm), RamGpa, 0, ram / PageSize, 1, 0);
        long last = GC.GetTotalAllocatedBytes(precise: true);
        var guest = new DirtyingGuest(ram / PageSize, 1, rounds)
        {
            AfterRound = r =>
            {
                if (r > rounds)
                    return;
                var now = GC.GetTotalAllocatedBytes(precise: true);
                alloc[r] = now - last; // this round's writes plus the previous round's send and dirty log
                heap[r] = GC.GetTotalMemory(forceFullCollection: true);
                last = GC.GetTotalAllocatedBytes(precise: true);
            },
        };
        var dest = MigrationRig.Migrate(vm, NewHost("dst", ram, 0), guest, new MigrationOptions(MaxRounds: rounds, StopCopyPages: 4));
        Verify(Vcpu(dest), RamGpa, 0, ram / PageSize, 1, guest.LastRound);
        yield return new BenchResult(Name, (heap[rounds] - heap[1]) / 1024.0, "KiB");
        yield return new BenchResult("migration_round1_heap_mib", heap[1] / (double)MiB, "MiB");
        yield return new BenchResult("migration_round50_heap_mib", heap[rounds] / (double)MiB, "MiB");
        yield return new BenchResult("migration_round2_allocated_kib", alloc[2] / 1024.0, "KiB");
        yield return new BenchResult("migration_round50_allocated_kib", alloc[rounds] / 1024.0, "KiB");
    }
}

/// <summary>
/// A guest read of a mapped page (a TLB hit, no fault) through the vCPU's allocation-free path, next to the stage-2
/// translation of the same pages served by the VM's TLB (target: within 3x) and a bare TLB lookup, with the bytes
/// allocated per access.
/// </summary>
internal sealed class GuestAccessVsTlbHit : IQuickBench
{
    public string Name => "guest_access_tlb_hit_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const int pages = 256;
        var rig = FaultRig.Create(pages);
        Span<byte> buf = stackalloc byte[8];
        for (var i = 0; i < pages; i++)
            _ = rig.Vcpu.Read(rig.Gpa + ((ulong)i << 12), buf);
        const int rounds = 1024;
        var vcpu = rig.Vcpu;
        var gpa = rig.Gpa;
        double access = BenchTimer.BestNsPerOp(settings, (long)pages * rounds, () =>
        {
            Span<byte> b = stackalloc byte[8];
            for (var r = 0; r < rounds; r++)
            {
                for (var i = 0; i < pages; i++)
                    _ = vcpu.Read(gpa + ((ulong)i << 12) + 0x10, b);
            }
        });
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < pages; i++)
            _ = vcpu.Read(gpa + ((ulong)i << 12) + 0x10, buf);
        long perAccess = (GC.GetAllocatedBytesForCurrentThread() - a0) / pages;

        var tlb = new Stage2Tlb();
        for (var i = 0; i < pages; i++)
            tlb.Fill(1, gpa + ((ulong)i << 12), new S2Descriptor(0x4000_0000_0000_07C3UL | ((ulong)i << 12)), 3);
        ulong sink = 0;
        double hit = BenchTimer.BestNsPerOp(settings, (long)pages * rounds, () =>
        {
            for (var r = 0; r < rounds; r++)
            {
                for (var i = 0; i < pages; i++)
                {
                    if (tlb.TryLookup(1, gpa + ((ulong)i << 12) + 0x10, out var e))
                        sink += e.Descriptor.Raw;
                }
            }
        });
        // The architectural translation of the same pages, served by the VM's TLB (the Arch layer's TLB hit).
        var table = rig.Vm.Stage2;
        double translate = BenchTimer.BestNsPerOp(settings, (long)pages * rounds, () =>
        {
            ulong s = 0;
            for (var r = 0; r < rounds; r++)
            {
                for (var i = 0; i < pages; i++)
                    s += table.Translate(gpa + ((ulong)i << 12) + 0x10, S2AccessKind.Read).Pa;
            }

            sink += s;
        });
        GC.KeepAlive(sink);
        yield return new BenchResult(Name, access, "ns");
        yield return new BenchResult("tlb_lookup_hit_ns", hit, "ns");
        yield return new BenchResult("stage2_translate_tlb_hit_ns", translate, "ns");
        yield return new BenchResult("guest_access_over_translate_hit", access / translate, "x");
        yield return new BenchResult("guest_access_over_tlb_lookup", access / hit, "x");
        yield return new BenchResult("guest_access_allocated_bytes", perAccess, "B");
    }
}

/// <summary>A 4K stage-2 fault end to end through the vCPU's allocation-free read (target: at most 500 ns), with the bytes allocated per fault.</summary>
internal sealed class FastFault4K : IQuickBench
{
    public string Name => "kernel_stage2_fault_4k_fast_ns";

    public BenchKind Kind => BenchKind.Quick;

    public IEnumerable<BenchResult> Run(BenchSettings settings)
    {
        const int pages = 4096;
        var rig = FaultRig.Create(pages);
        var ns = BenchTimer.BestNsPerOp(settings, pages, () => rig.FaultAllThenZap());
        rig.FaultAllThenZap(); // the zap left every page unmapped again
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        rig.FaultAll();
        long perFault = (GC.GetAllocatedBytesForCurrentThread() - a0) / pages;
        yield return new BenchResult(Name, ns, "ns");
        yield return new BenchResult("kernel_stage2_fault_4k_allocated_bytes", perFault, "B");
    }
}
