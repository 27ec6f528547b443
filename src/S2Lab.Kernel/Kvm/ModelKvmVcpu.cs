using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>
/// A model vCPU. The guest's behaviour is a queue of <see cref="GuestAccessRequest"/>s: <see cref="Run"/> executes
/// them until one exits to userspace (MMIO) or fails (EFAULT), as KVM_RUN would. <see cref="Access"/> performs one
/// access directly and returns the full explanation.
/// </summary>
public sealed class ModelKvmVcpu : IKvmVcpu
{
    private readonly Queue<GuestAccessRequest> _program = new();
    private readonly List<GuestAccessResult> _history = [];

    internal ModelKvmVcpu(ModelKvmVm vm, uint id)
    {
        Vm = vm;
        Id = id;
    }

    public uint Id { get; }

    public ModelKvmVm Vm { get; }

    /// <summary>Results of the accesses <see cref="Run"/> executed, in order.</summary>
    public IReadOnlyList<GuestAccessResult> History => _history;

    /// <summary>Keeps the full decision chain (Steps) of every access; off for the fastest path (benchmarks).</summary>
    public bool Explain { get; set; } = true;

    /// <summary>Adds accesses to the guest's program.</summary>
    public void Enqueue(params GuestAccessRequest[] accesses)
    {
        foreach (var a in accesses)
            _program.Enqueue(a);
    }

    /// <summary>
    /// KVM_RUN: runs the queued accesses. Returns the MMIO exit of the access that needs one, fails with the errno of a
    /// failed fault (EFAULT), or returns <see cref="KvmExitReason.Hlt"/> when the program is done (the model's "guest idle").
    /// Injected aborts do not stop the vCPU.
    /// </summary>
    public KvmResult<KvmExit> Run()
    {
        while (_program.TryDequeue(out var req))
        {
            var r = Access(req);
            _history.Add(r);
            switch (r.Outcome)
            {
                case GuestAccessOutcome.MmioExit:
                    return KvmResult<KvmExit>.Ok(r.Exit!.Value);
                case GuestAccessOutcome.RunFailed:
                    return r.RunError;
            }
        }
        return KvmResult<KvmExit>.Ok(new KvmExit(KvmExitReason.Hlt));
    }

    /// <summary>One guest access with its whole explanation: faults handled on the way, data, effective type, hazards.</summary>
    public GuestAccessResult Access(in GuestAccessRequest request)
    {
        var r = new GuestAccessResult { Request = request, Explaining = Explain };
        var ipa = request.Ipa;
        var len = request.Type == GuestAccessType.Write ? request.Data?.Length ?? 0 : request.Length;
        if (len <= 0 || len > (int)PAGE_SIZE || (ipa & (PAGE_SIZE - 1)) + (ulong)len > PAGE_SIZE)
        {
            // A model restriction: one access stays within one page, as an aligned load/store does.
            r.Outcome = GuestAccessOutcome.AbortInjected;
            r.Step(DecisionStage.Exit, 0, "the access crosses a page or has no size: alignment fault injected");
            return r;
        }
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var leaf = Vm.Stage2.GetLeaf(ipa);
            if (leaf is { } l && Permits(l, request.Type))
            {
                Complete(r, l, len);
                return r;
            }
            var outcome = Vm.HandleGuestAbort(ipa, request.Type, leaf, r, out var err);
            switch (outcome)
            {
                case AbortOutcome.Mmio:
                    r.Outcome = GuestAccessOutcome.MmioExit;
                    r.Exit = new KvmExit(KvmExitReason.Mmio, ipa, (uint)len, request.Type == GuestAccessType.Write);
                    return r;
                case AbortOutcome.Injected:
                    r.Outcome = GuestAccessOutcome.AbortInjected;
                    return r;
                case AbortOutcome.Failed:
                    r.Outcome = GuestAccessOutcome.RunFailed;
                    r.RunError = err;
                    return r;
            }
        }
        r.Outcome = GuestAccessOutcome.RunFailed;
        r.RunError = Errno.EFAULT;
        r.Step(DecisionStage.Exit, 0, "the fault did not resolve after repeated attempts");
        return r;
    }

    private static bool Permits(in Stage2Leaf leaf, GuestAccessType type) => type switch
    {
        GuestAccessType.Read => leaf.Readable,
        GuestAccessType.Write => leaf.Writable,
        _ => leaf.Executable,
    };

    private void Complete(GuestAccessResult r, in Stage2Leaf leaf, int len)
    {
        var req = r.Request;
        var pa = leaf.Translate(req.Ipa);
        var mem = Vm.Host.Memory;
        r.Outcome = GuestAccessOutcome.Completed;
        r.Leaf = leaf;
        r.HostPhysAddr = pa;
        r.Memslot ??= Vm.Memslots().Find(req.Ipa >> PAGE_SHIFT);
        if (r.Vma is null && r.Memslot is { GmemOnly: false } s)
            r.Vma = Vm.Mm.FindVma(s.GfnToHva(req.Ipa >> PAGE_SHIFT));
        if (req.Type == GuestAccessType.Write)
        {
            mem.Write(pa, req.Data);
        }
        else
        {
            var data = new byte[len];
            mem.Read(pa, data);
            r.Data = data;
        }
        if (Explain)
            r.Step(DecisionStage.Stage2, 0, $"translated by {leaf}: PA {pa:x}");
        AccessAnalysis.Analyse(Vm, r, leaf, pa, Explain);
    }

    public void Dispose()
    {
    }
}
