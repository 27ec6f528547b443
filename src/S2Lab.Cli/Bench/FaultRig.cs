using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Cli.Bench;

/// <summary>
/// One anonymous 4K-page slot (no THP) with its host pages populated, for fault and access measurements. Shared by the
/// quick benches of <c>s2lab bench</c> and the BenchmarkDotNet suite (which compiles this file in).
/// </summary>
internal sealed class FaultRig
{
    private const ulong PageSize = 4096;

    private FaultRig(ModelKvmVm vm, ModelKvmVcpu vcpu, Vma ram, ulong gpa, int pages)
    {
        Vm = vm;
        Vcpu = vcpu;
        Ram = ram;
        Gpa = gpa;
        Pages = pages;
    }

    public ModelKvmVm Vm { get; }

    public ModelKvmVcpu Vcpu { get; }

    public Vma Ram { get; }

    public ulong Gpa { get; }

    public int Pages { get; }

    public static FaultRig Create(int pages)
    {
        var host = S2Lab.Kernel.Host.Create("bench", "neoverse-v2", "linux-6.17");
        var vmm = host.CreateProcess("vmm");
        var vm = host.OpenKvm(vmm).CreateModelVm().Value;
        var vcpu = vm.CreateModelVcpu(0).Value;
        var ram = AnonymousMemory.Mmap(vmm, (ulong)pages * PageSize, thp: false).Value;
        for (ulong o = 0; o < ram.Size; o += PageSize)
            _ = vmm.Mm.FaultIn(ram.Start + o, write: true);
        const ulong gpa = 0x4000_0000;
        if (vm.SetUserMemoryRegion2(new KvmUserspaceMemoryRegion2(0, 0, gpa, ram.Size, ram.Start, 0, 0)) != Errno.None)
            throw new InvalidOperationException("memslot");
        return new FaultRig(vm, vcpu, ram, gpa, pages);
    }

    /// <summary>Reads every page once through the allocation-free path: each a 4K translation fault the first time.</summary>
    public void FaultAll()
    {
        Span<byte> b = stackalloc byte[8];
        for (var i = 0; i < Pages; i++)
        {
            if (!Vcpu.Read(Gpa + ((ulong)i << 12), b).Completed)
                throw new InvalidOperationException("fault failed");
        }
    }

    /// <summary>
    /// Reads every page once through <see cref="ModelKvmVcpu.Access"/>, the path that returns a full result (no
    /// observer is attached, so no event is built).
    /// </summary>
    public void FaultAllWithResults()
    {
        for (var i = 0; i < Pages; i++)
        {
            if (Vcpu.Access(GuestAccessRequest.Read(Gpa + ((ulong)i << 12), 0xFF)).Outcome != GuestAccessOutcome.Completed)
                throw new InvalidOperationException("fault failed");
        }
    }

    /// <summary>The MMU notifier zaps the range, so the next reads fault again.</summary>
    public void Zap() => ((IMmuNotifier)Vm).InvalidateRangeStart(Vm.Mm, Ram.Start, Ram.End, MmuNotifyEvent.Clear);

    /// <summary><see cref="FaultAll"/>, then <see cref="Zap"/>.</summary>
    public void FaultAllThenZap()
    {
        FaultAll();
        Zap();
    }
}
