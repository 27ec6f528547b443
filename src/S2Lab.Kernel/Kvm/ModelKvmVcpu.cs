using System.Runtime.CompilerServices;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>How an allocation-free guest access (<see cref="ModelKvmVcpu.Read"/>, <see cref="ModelKvmVcpu.Write"/>) ended.</summary>
/// <param name="Error">For <see cref="GuestAccessOutcome.RunFailed"/>: the errno KVM_RUN fails with.</param>
public readonly record struct GuestAccessStatus(GuestAccessOutcome Outcome, Errno Error = Errno.None)
{
    public bool Completed => Outcome == GuestAccessOutcome.Completed;
}

/// <summary>
/// A model vCPU. The guest's behaviour is a queue of <see cref="GuestAccessRequest"/>s: <see cref="Run"/> executes
/// them until one exits to userspace (MMIO) or fails (EFAULT), as KVM_RUN would. <see cref="Access"/> performs one
/// access directly and returns its full result; <see cref="Read"/> and <see cref="Write"/> perform one access
/// and return only how it ended, allocating nothing. Every access translates through the VM's stage-2 MMU: a TLB hit
/// serves a mapped page; after an unmap or a break-before-make the entry is gone, so the access walks and faults.
/// </summary>
public sealed class ModelKvmVcpu : IKvmVcpu
{
    /// <summary>How many of the latest <see cref="Run"/> results <see cref="History"/> keeps.</summary>
    public const int HistoryCapacity = 64;

    private readonly Queue<GuestAccessRequest> _program = new();
    private readonly GuestAccessResult?[] _history = new GuestAccessResult?[HistoryCapacity];
    private long _historyCount;

    /// <summary>The S1 MAIR byte <see cref="Read"/> and <see cref="Write"/> assume: Normal iWB oWB, as a guest maps its RAM.</summary>
    public const byte FastPathS1Mair = 0xFF;

    private readonly Stage2Mmu _stage2;
    private readonly ModelKvmSystem _kvm;
    private readonly CacheSystem _caches;
    private readonly Accessor _cpu;

    // The fast path's effective data attributes per stage-2 MemAttr (bit n of _attrsKnown: entry n is computed).
    private readonly MemoryAttributes[] _fastAttrs = new MemoryAttributes[16];
    private uint _attrsKnown;

    // Bit n: the fast path's attributes for MemAttr n are cacheable, so a read may be served by the data cache's hit path.
    private uint _fastCacheable;
    private bool _sctlrM = true;
    private bool _sctlrC = true;
    private bool _sctlrI = true;

    internal ModelKvmVcpu(ModelKvmVm vm, uint id)
    {
        Vm = vm;
        Id = id;
        _stage2 = vm.Stage2;
        _kvm = vm.Kvm;
        _caches = vm.Host.Caches;
        _cpu = Accessor.Cpu((int)(id % (uint)Math.Max(1, vm.Host.CpuCount)));
    }

    /// <summary>SCTLR_EL1.M: the guest's stage-1 MMU. Off (early boot): data accesses are Device-nGnRnE (D8.2.11).</summary>
    public bool SctlrM
    {
        get => _sctlrM;
        set => (_sctlrM, _attrsKnown) = (value, 0);
    }

    /// <summary>SCTLR_EL1.C: off, the guest's Normal data accesses are Non-cacheable.</summary>
    public bool SctlrC
    {
        get => _sctlrC;
        set => (_sctlrC, _attrsKnown) = (value, 0);
    }

    /// <summary>SCTLR_EL1.I: off, instruction fetches are Non-cacheable.</summary>
    public bool SctlrI
    {
        get => _sctlrI;
        set => (_sctlrI, _attrsKnown) = (value, 0);
    }

    /// <summary>The physical CPU the vCPU runs on (it picks the I-cache; the data cache is shared).</summary>
    public Accessor Cpu => _cpu;

    public uint Id { get; }

    public ModelKvmVm Vm { get; }

    /// <summary>
    /// Results of the last <see cref="HistoryCapacity"/> accesses <see cref="Run"/> executed, oldest first (older ones
    /// are dropped, so a long-running guest does not grow without bound).
    /// </summary>
    public IReadOnlyList<GuestAccessResult> History
    {
        get
        {
            var n = (int)Math.Min(_historyCount, HistoryCapacity);
            var list = new List<GuestAccessResult>(n);
            for (var i = _historyCount - n; i < _historyCount; i++)
                list.Add(_history[i % HistoryCapacity]!);
            return list;
        }
    }

    /// <summary>Accesses <see cref="Run"/> has executed in all (including those <see cref="History"/> dropped).</summary>
    public long AccessesRun => _historyCount;

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
            _history[_historyCount++ % HistoryCapacity] = r;
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

    private static bool InOnePage(ulong ipa, int len) => len > 0 && len <= (int)PAGE_SIZE && (ipa & (PAGE_SIZE - 1)) + (ulong)len <= PAGE_SIZE;

    /// <summary>
    /// The MMU's part of an access: true with the leaf (as a TLB entry or walk found it) when it may complete;
    /// false with <paramref name="existing"/> = the leaf for a permission fault, null for a translation fault. A fault
    /// costs one walk (the TLB miss) and the fault handler's map; the retry reads the leaf the map installed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Translate(ulong ipa, S2AccessKind type, bool retry, out S2TranslationResult t, out S2Leaf? existing)
    {
        t = _stage2.Translate(ipa, type, retry);
        return Classify(ipa, type, t, out existing);
    }

    /// <summary>What <see cref="Translate"/> concludes from a translation already made.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Classify(ulong ipa, S2AccessKind type, in S2TranslationResult t, out S2Leaf? existing)
    {
        existing = null;
        switch (t.Fault.Kind)
        {
            case S2FaultKind.None:
                return true;
            case S2FaultKind.Permission:
                existing = Vm.Stage2.LeafOf(ipa, t);
                return false;
            case S2FaultKind.Translation:
                return false;
            default:
                // Access flag or address size: KVM's leaves always have AF set and a valid output address; should one
                // not, the fault handler sees the leaf as it is (kvm_pgtable_get_leaf), as before.
                existing = Vm.Stage2.GetLeaf(ipa);
                return existing is { } l && Permits(l, type);
        }
    }

    /// <summary>
    /// One guest access with its full result: the faults handled on the way, the data and the effective type. The
    /// decisions behind it go to <see cref="ModelKvmSystem.Observer"/> as events.
    /// </summary>
    public GuestAccessResult Access(in GuestAccessRequest request)
    {
        var r = AccessCore(request);
        if (_kvm.Observer is { } o)
        {
            if (r.Outcome == GuestAccessOutcome.Completed)
            {
                var input = CombineInputFor(request.S1Mair, r.Leaf!.Value.MemAttr, request.Type);
                var effective = AttributeCombiner.Combine(input);
                Accessed(o, request.Type, request.Ipa, r.Leaf.Value, input, effective,
                    request.Type == S2AccessKind.Write ? request.Data ?? [] : r.Data ?? [], r.Path);
            }
            else
            {
                Ended(o, request.Type, request.Ipa, r.Outcome, r.RunError);
            }
        }
        return r;
    }

    private string Agent => $"vm{Vm.Number}/vcpu{Id}";

    private void Accessed(IKernelObserver o, S2AccessKind type, ulong ipa, in S2Leaf leaf, CombineInput? input,
        CombineResult? effective, ReadOnlySpan<byte> bytes, AccessPath? path = null) =>
        o.On(new MemoryAccessed(_kvm.NextSeq(), Vm.Host.Name, Vm.Number, Agent, Id, type, ipa, leaf.Translate(ipa), leaf,
            input, effective, bytes.ToArray(), path));

    private void Ended(IKernelObserver o, S2AccessKind type, ulong ipa, GuestAccessOutcome outcome, Errno error) =>
        o.On(new AccessEnded(_kvm.NextSeq(), Vm.Host.Name, Vm.Number, Id, type, ipa, outcome, error));

    private GuestAccessResult AccessCore(in GuestAccessRequest request)
    {
        var r = new GuestAccessResult { Request = request };
        var ipa = request.Ipa;
        var len = request.Type == S2AccessKind.Write ? request.Data?.Length ?? 0 : request.Length;
        if (!InOnePage(ipa, len))
        {
            // A model restriction: one access stays within one page, as an aligned load/store does.
            r.Outcome = GuestAccessOutcome.AbortInjected;
            return r;
        }
        for (var attempt = 0; attempt < 4; attempt++)
        {
            if (Translate(ipa, request.Type, attempt > 0, out var t, out var leaf))
            {
                Complete(r, leaf ?? Vm.Stage2.LeafOf(ipa, t), len);
                return r;
            }
            var outcome = Vm.HandleGuestAbort(Id, ipa, request.Type, leaf, r, out var err);
            switch (outcome)
            {
                case AbortOutcome.Mmio:
                    r.Outcome = GuestAccessOutcome.MmioExit;
                    r.Exit = new KvmExit(KvmExitReason.Mmio, ipa, (uint)len, request.Type == S2AccessKind.Write);
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
        return r;
    }

    /// <summary>
    /// A guest load of <c>destination.Length</c> bytes at <paramref name="ipa"/> (within one page), as <see cref="Access"/>
    /// performs it but without an explanation, an effective type or any allocation.
    /// </summary>
    public GuestAccessStatus Read(ulong ipa, Span<byte> destination) => Fast(ipa, S2AccessKind.Read, destination, default);

    /// <summary>A guest store of <paramref name="source"/> at <paramref name="ipa"/> (within one page); see <see cref="Read"/>.</summary>
    public GuestAccessStatus Write(ulong ipa, ReadOnlySpan<byte> source) => Fast(ipa, S2AccessKind.Write, default, source);

    private GuestAccessStatus Fast(ulong ipa, S2AccessKind type, Span<byte> destination, ReadOnlySpan<byte> source)
    {
        var s = FastCore(ipa, type, destination, source);
        if (_kvm.Observer is { } o)
            FastObserved(o, ipa, type, s, type == S2AccessKind.Write ? source : destination);
        return s;
    }

    /// <summary>The events of a fast access: no stage-1 attribute is known, so no combine.</summary>
    private void FastObserved(IKernelObserver o, ulong ipa, S2AccessKind type, GuestAccessStatus s, ReadOnlySpan<byte> bytes)
    {
        if (s.Completed && _stage2.GetLeaf(ipa) is { } leaf)
            Accessed(o, type, ipa, leaf, null, null, bytes);
        else
            Ended(o, type, ipa, s.Outcome, s.Error);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private GuestAccessStatus FastCore(ulong ipa, S2AccessKind type, Span<byte> destination, ReadOnlySpan<byte> source)
    {
        var len = type == S2AccessKind.Write ? source.Length : destination.Length;
        if (!InOnePage(ipa, len))
            return new GuestAccessStatus(GuestAccessOutcome.AbortInjected);
        // The common case first: the TLB (or a walk) permits the access, with no leaf to look at.
        var t = _stage2.Translate(ipa, type, false);
        if (t.Fault.Kind == S2FaultKind.None)
        {
            Transfer(t.Pa, t.MemAttr, type, destination, source);
            return new GuestAccessStatus(GuestAccessOutcome.Completed);
        }
        return FastFault(ipa, type, destination, source, t);
    }

    /// <summary>The fast path after a stage-2 fault: KVM handles it and the access retries (kept out of the hit path).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private GuestAccessStatus FastFault(ulong ipa, S2AccessKind type, Span<byte> destination, ReadOnlySpan<byte> source, S2TranslationResult t)
    {
        for (var attempt = 0; attempt < 4; attempt++)
        {
            if (attempt > 0)
                t = _stage2.Translate(ipa, type, true);
            if (Classify(ipa, type, t, out var leaf))
            {
                if (leaf is { } l)
                    Transfer(l.Translate(ipa), l.MemAttr, type, destination, source);
                else
                    Transfer(t.Pa, t.MemAttr, type, destination, source);
                return new GuestAccessStatus(GuestAccessOutcome.Completed);
            }
            switch (Vm.HandleGuestAbort(Id, ipa, type, leaf, null, out var err))
            {
                case AbortOutcome.Mmio:
                    return new GuestAccessStatus(GuestAccessOutcome.MmioExit);
                case AbortOutcome.Injected:
                    return new GuestAccessStatus(GuestAccessOutcome.AbortInjected);
                case AbortOutcome.Failed:
                    return new GuestAccessStatus(GuestAccessOutcome.RunFailed, err);
            }
        }
        return new GuestAccessStatus(GuestAccessOutcome.RunFailed, Errno.EFAULT);
    }

    /// <summary>The fast path's data access through the host's caches with the effective attributes (cacheable: through, else around).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Transfer(ulong pa, byte memAttr, S2AccessKind type, Span<byte> destination, ReadOnlySpan<byte> source)
    {
        var i = memAttr & 0xF;
        if ((_attrsKnown & (1u << i)) == 0)
        {
            _fastAttrs[i] = AttributeCombiner.Combine(CombineInputFor(FastPathS1Mair, (byte)i, S2AccessKind.Read)).Attributes;
            if (CacheSystem.CachingOf(_fastAttrs[i]) != DataCaching.None)
                _fastCacheable |= 1u << i;
            else
                _fastCacheable &= ~(1u << i);
            _attrsKnown |= 1u << i;
        }
        if (type != S2AccessKind.Write && (_fastCacheable & (1u << i)) != 0 && _caches.TryReadHit(pa, destination))
            return;
        if (type == S2AccessKind.Write)
            _caches.Write(_cpu, pa, _fastAttrs[i], source);
        else
            _caches.Read(_cpu, pa, _fastAttrs[i], destination);
    }

    /// <summary>The combine's input for this vCPU: its S1 attribute, the leaf's MemAttr, FWB and SCTLR_EL1.M/C/I.</summary>
    internal CombineInput CombineInputFor(byte s1Mair, byte memAttr, S2AccessKind type) =>
        new(s1Mair, Shareability.ISH, memAttr, Shareability.ISH, _stage2.Fwb)
        {
            Access = type == S2AccessKind.Execute ? AccessKind.InstructionFetch : AccessKind.Data,
            SctlrM = _sctlrM,
            SctlrC = _sctlrC,
            SctlrI = _sctlrI,
        };

    private static bool Permits(in S2Leaf leaf, S2AccessKind type) => type switch
    {
        S2AccessKind.Read => leaf.Readable,
        S2AccessKind.Write => leaf.Writable,
        _ => leaf.Executable,
    };

    private void Complete(GuestAccessResult r, in S2Leaf leaf, int len)
    {
        var req = r.Request;
        var pa = leaf.Translate(req.Ipa);
        r.Outcome = GuestAccessOutcome.Completed;
        r.Leaf = leaf;
        r.HostPhysAddr = pa;
        r.Memslot ??= Vm.Memslots().Find(req.Ipa >> PAGE_SHIFT);
        if (r.Vma is null && r.Memslot is { GmemOnly: false } s)
            r.Vma = Vm.Mm.FindVma(s.GfnToHva(req.Ipa >> PAGE_SHIFT));
        // The effective type: the Arm combine of the guest's stage-1 attribute with the leaf's MemAttr. Hazards and the
        // combine's text are the Lab's, from MemoryAccessed (Lab/Judging/Hazards.cs, Lab/Runner/Explainer.cs).
        var result = AttributeCombiner.Combine(CombineInputFor(req.S1Mair, leaf.MemAttr, req.Type));
        var attrs = result.Attributes;
        r.Effective = new EffectiveMemoryType(result.ParAttr, attrs);
        // The data moves through the caches with the effective attributes the combine gave (Arch/Caches/README.md).
        if (req.Type == S2AccessKind.Write)
        {
            r.Path = _caches.Write(_cpu, pa, attrs, req.Data);
        }
        else
        {
            var data = new byte[len];
            r.Path = req.Type == S2AccessKind.Execute ? _caches.Fetch(_cpu, pa, attrs, data) : _caches.Read(_cpu, pa, attrs, data);
            r.Data = data;
        }
    }

    public void Dispose()
    {
    }
}
