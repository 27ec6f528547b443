using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Benchmarks;

/// <summary>Shared set-up of the kernel benchmarks (also used by the quick benches of <c>s2lab bench</c>).</summary>
public static class KernelBenchSetup
{
    public sealed record FullVm(ModelKvmVm Vm, int Slots);

    public sealed record FaultRig(ModelKvmVm Vm, ModelKvmVcpu Vcpu, Vma Ram, ulong Gpa, int Pages);

    private const ulong SlotStride = 0x10_0000; // 1 MiB of IPA per slot, one page used

    /// <summary>
    /// A VM with <paramref name="slots"/> one-page slots (ids 0..n-1, slot i at gpa i MiB), created in gfn order, or
    /// in a random order when <paramref name="shuffleSeed"/> is given (partly filled index leaves, as after churn).
    /// </summary>
    public static FullVm VmWithSlots(int slots, int? shuffleSeed = null)
    {
        var host = Host.Create("bench", "neoverse-v2", "linux-6.17");
        var kvm = new ModelKvmSystem(host);
        var vm = kvm.CreateModelVm(48).Value;
        var order = Enumerable.Range(0, slots).ToArray();
        if (shuffleSeed is { } seed)
            new Random(seed).Shuffle(order);
        foreach (var i in order)
        {
            var e = vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2((uint)i, 0, (ulong)i * SlotStride, 0x1000, 0x1000_0000_0000 + ((ulong)i << 12), 0, 0));
            if (e != Errno.None)
                throw new InvalidOperationException($"slot {i}: {e}");
        }
        return new FullVm(vm, slots);
    }

    /// <summary>The first gfn of slot <paramref name="i"/> of <see cref="VmWithSlots"/>.</summary>
    public static ulong SlotBaseGfn(int i) => ((ulong)i * SlotStride) >> 12;

    /// <summary>Random gfns inside the slots.</summary>
    public static ulong[] RandomGfns(FullVm vm, int n, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => ((ulong)rnd.Next(vm.Slots) * SlotStride) >> 12).ToArray();
    }

    /// <summary>Random gfns: half a slot's first page, half the page after it (outside every slot, a miss).</summary>
    public static ulong[] RandomGfnsHalfMisses(FullVm vm, int n, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (((ulong)rnd.Next(vm.Slots) * SlotStride) >> 12) + (ulong)rnd.Next(2)).ToArray();
    }

    /// <summary>Creates slot id = Slots at the top of the used IPA range, then deletes it; returns 0 on success.</summary>
    public static int CreateDeleteOnce(FullVm v)
    {
        var id = (uint)v.Slots;
        var gpa = (ulong)v.Slots * SlotStride;
        var a = v.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(id, 0, gpa, 0x1000, 0x2000_0000_0000, 0, 0));
        var b = v.Vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(id, 0, gpa, 0, 0x2000_0000_0000, 0, 0));
        return (int)a | (int)b;
    }

    /// <summary>A VM with one anonymous slot of <paramref name="pages"/> 4K pages (no THP), host pages already touched.</summary>
    public static FaultRig AnonFaultRig(int pages)
    {
        var host = Host.Create("bench", "neoverse-v2", "linux-6.17");
        var vmm = host.CreateProcess("vmm");
        var kvm = host.OpenKvm(vmm);
        var vm = kvm.CreateModelVm().Value;
        var vcpu = vm.CreateModelVcpu(0).Value;
        vcpu.Explain = false;
        var size = (ulong)pages << 12;
        var ram = AnonymousMemory.Mmap(vmm, size, thp: false).Value;
        for (ulong o = 0; o < size; o += 0x1000)
            _ = vmm.Mm.FaultIn(ram.Start + o, write: true);
        const ulong gpa = 0x4000_0000;
        if (vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, gpa, size, ram.Start, 0, 0)) != Errno.None)
            throw new InvalidOperationException("slot");
        return new FaultRig(vm, vcpu, ram, gpa, pages);
    }

    /// <summary>Reads every page once (each a 4K translation fault), then zaps the range through the MMU notifier.</summary>
    public static int FaultAllThenZap(FaultRig r)
    {
        var ok = 0;
        for (var i = 0; i < r.Pages; i++)
        {
            var res = r.Vcpu.Access(GuestAccessRequest.Read(r.Gpa + ((ulong)i << 12), 0xFF));
            if (res.Outcome == GuestAccessOutcome.Completed)
                ok++;
        }
        r.Vm.InvalidateRangeStart(r.Vm.Mm, r.Ram.Start, r.Ram.End, MmuNotifyEvent.Clear);
        return ok;
    }

    /// <summary>Reads every page once through the vCPU's allocation-free path (each a 4K translation fault the first time).</summary>
    public static int FaultAllFast(FaultRig r)
    {
        Span<byte> b = stackalloc byte[8];
        var ok = 0;
        for (var i = 0; i < r.Pages; i++)
        {
            if (r.Vcpu.Read(r.Gpa + ((ulong)i << 12), b).Outcome == GuestAccessOutcome.Completed)
                ok++;
        }
        return ok;
    }

    /// <summary><see cref="FaultAllFast"/>, then the MMU notifier zaps the range (so the next call faults again).</summary>
    public static int FaultAllThenZapFast(FaultRig r)
    {
        var ok = FaultAllFast(r);
        r.Vm.InvalidateRangeStart(r.Vm.Mm, r.Ram.Start, r.Ram.End, MmuNotifyEvent.Clear);
        return ok;
    }
}
