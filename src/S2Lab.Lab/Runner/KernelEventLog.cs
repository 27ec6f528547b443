using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Judging;
using Hazard = S2Lab.Lab.Judging.Hazard;

namespace S2Lab.Lab.Runner;

/// <summary>
/// The Lab's observer of one /dev/kvm: it keeps the kernel events, remembers which fault's facts (VMA, pfn,
/// pfn_is_map_memory) stand behind each stage-2 leaf, and judges hazards (<see cref="Hazards"/>) from them.
/// <see cref="Attach"/> installs it for a scope and <see cref="Dispose"/> puts back the previous observer.
/// </summary>
public sealed class KernelEventLog : IKernelObserver, IDisposable
{
    private readonly List<KernelEvent> _events = [];
    private readonly Dictionary<int, FaultFacts> _lastFacts = [];

    /// <summary>
    /// The leaves the events showed, by VM and start IPA: the event that last showed each, and the facts of the fault
    /// that wrote it (null: written with no fault seen, or before the log was attached). One table, so that an unmap
    /// forgets a leaf and its facts by one rule.
    /// </summary>
    private readonly Dictionary<(int Vm, ulong Ipa), (long Seq, S2Leaf Leaf, FaultFacts? Facts)> _leaves = [];
    private readonly ModelKvmSystem? _kvm;
    private readonly IKernelObserver? _previous;
    private readonly PhysicalMemory _memory;

    private KernelEventLog(ModelKvmSystem? kvm, PhysicalMemory memory)
    {
        _kvm = kvm;
        _memory = memory;
        _previous = kvm?.Observer;
    }

    /// <summary>
    /// The log observing <paramref name="kvm"/>, attached on first use and kept for the system's life, so that the facts
    /// behind a leaf mapped by an earlier step are known when a later step touches it.
    /// </summary>
    public static KernelEventLog Of(ModelKvmSystem kvm) => kvm.Observer as KernelEventLog ?? Attach(kvm);

    /// <summary>Observes <paramref name="kvm"/> until disposed (events also go on to an observer already attached).</summary>
    public static KernelEventLog Attach(ModelKvmSystem kvm)
    {
        var log = new KernelEventLog(kvm, kvm.Host.Memory);
        kvm.Observer = log;
        return log;
    }

    /// <summary>A log fed by hand (tests): hazards judge PAs against <paramref name="memory"/>.</summary>
    public static KernelEventLog Detached(PhysicalMemory memory) => new(null, memory);

    /// <summary>The events not yet taken, in order.</summary>
    public IReadOnlyList<KernelEvent> Events => _events;

    /// <summary>
    /// Whether events are kept for <see cref="Take"/> (the leaf facts are tracked either way). A scenario's log keeps
    /// them only while a step looks, so a long migration between steps does not pile them up.
    /// </summary>
    public bool Keeping { get; set; } = true;

    public void On(KernelEvent e)
    {
        if (Keeping)
            _events.Add(e);
        switch (e)
        {
            case FaultDecided f:
                _lastFacts[f.Vm] = f.Facts;
                break;
            case Stage2Written { Kind: Stage2WriteKind.Map or Stage2WriteKind.RelaxPerms, Leaf: { } leaf } w:
                _leaves[(w.Vm, leaf.Ipa)] = (w.Seq, leaf, _lastFacts.TryGetValue(w.Vm, out var facts) ? facts : null);
                break;
            case Stage2Written { Kind: Stage2WriteKind.Unmap } u:
                // Every leaf the range overlaps goes with its facts, a block only partly covered too: KVM's
                // stage2_unmap_walker clears the whole leaf it visits and does not split a block (Arch's UnmapVisitor
                // does the same). A later fault maps the rest again, with the facts it sees then.
                foreach (var (k, _) in _leaves.Where(x => x.Key.Vm == u.Vm && x.Key.Ipa < u.Ipa + u.Size && u.Ipa < x.Key.Ipa + x.Value.Leaf.Size).ToList())
                    _leaves.Remove(k);
                break;
            case MemoryAccessed a:
                _leaves[(a.Vm, a.Leaf.Ipa)] = (a.Seq, a.Leaf, _leaves.TryGetValue((a.Vm, a.Leaf.Ipa), out var known) ? known.Facts : null);
                break;
        }
        _previous?.On(e);
    }

    /// <summary>The events since the last call (or since the log was attached); the log keeps only what follows.</summary>
    public IReadOnlyList<KernelEvent> Take()
    {
        var list = _events.ToList();
        _events.Clear();
        return list;
    }

    /// <summary>
    /// The stage-2 leaf covering <paramref name="ipa"/> in VM <paramref name="vm"/> as the events last showed it (a map,
    /// a permission relax, or an access that used it; an unmap forgets it), or null. Where two known leaves cover the
    /// IPA (a block split into pages), the later event wins.
    /// </summary>
    public S2Leaf? LeafAt(int vm, ulong ipa)
    {
        (long Seq, S2Leaf Leaf, FaultFacts? Facts)? best = null;
        foreach (var ((v, start), x) in _leaves)
        {
            if (v == vm && ipa - start < x.Leaf.Size && (best is null || x.Seq > best.Value.Seq))
                best = x;
        }
        return best?.Leaf;
    }

    /// <summary>
    /// What the host maps behind the leaf an access used: the facts of the fault that wrote the leaf, or, for a leaf
    /// mapped before this log was attached, only pfn_is_map_memory of the PA (no VMA known).
    /// </summary>
    public FaultFacts HostFacts(MemoryAccessed a) =>
        _leaves.TryGetValue((a.Vm, a.Leaf.Ipa), out var known) && known.Facts is { } f
            ? f
            : FaultFacts.None with { Pfn = a.Pa >> PageSizes.PAGE_SHIFT, MapMemory = _memory.PfnIsMapMemory(a.Pa >> PageSizes.PAGE_SHIFT) };

    /// <summary>The hazards <paramref name="events"/> show, each kind once, in the order found.</summary>
    public IReadOnlyList<Hazard> Judge(IEnumerable<KernelEvent> events)
    {
        var found = new List<Hazard>();
        void Add(Hazard? h)
        {
            if (h is not null && !found.Any(x => x.Kind == h.Kind))
                found.Add(h);
        }

        foreach (var e in events)
        {
            switch (e)
            {
                case MemoryAccessed a:
                    Add(Hazards.MismatchedAlias(a, HostFacts(a), a.Leaf.Fwb));
                    Add(Hazards.RamAsDevice(a, _memory.RegionOf(a.Pa)));
                    break;
                case CmoRequired c:
                    Add(Hazards.ImpossibleMaintenance(c));
                    break;
            }
        }
        return found;
    }

    public void Dispose()
    {
        if (_kvm is not null && ReferenceEquals(_kvm.Observer, this))
            _kvm.Observer = _previous;
    }
}
