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
}
