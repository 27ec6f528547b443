using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>
/// A VM's stage-2 MMU (struct kvm_s2_mmu): the page table, whether it uses FWB encodings (stage2_has_fwb), and the
/// cache maintenance KVM's mm_ops would perform when leaves are installed.
/// </summary>
public sealed class Stage2Mmu
{
    private readonly Stage2TableAdapter _table;
    private readonly List<S2CacheMaintenance> _cmos = [];
    private readonly Host _host;

    internal Stage2Mmu(Host host, int ipaBits)
    {
        _host = host;
        IpaBits = ipaBits;
        _table = new Stage2TableAdapter(host, ipaBits);
    }

    /// <summary>The VM this MMU belongs to (for its kernel events).</summary>
    internal ModelKvmVm? Owner { get; init; }

    /// <summary>The observer of the owning VM's /dev/kvm, or null (then nothing is emitted).</summary>
    private IKernelObserver? Observer => Owner?.Kvm.Observer;

    private void Written(IKernelObserver o, Stage2WriteKind kind, ulong ipa, ulong size, S2Leaf? leaf) =>
        o.On(new Stage2Written(Owner!.Kvm.NextSeq(), Owner.Host.Name, Owner.Number, kind, ipa, size, leaf, Fwb));

    private void Cmos(IKernelObserver o, IReadOnlyList<CacheMaintenance> considered)
    {
        foreach (var c in considered)
            o.On(new CmoRequired(Owner!.Kvm.NextSeq(), Owner.Host.Name, Owner.Number, c.Kind, c.Pa, c.Size, c.Needed, c.Possible, c.Reason));
    }

    /// <summary>The IPA size (VTCR_EL2.T0SZ = 64 - IpaBits).</summary>
    public int IpaBits { get; }

    /// <summary>stage2_has_fwb(): HCR_EL2.FWB is set and the MT_S2_FWB_* encodings are used (the table's setting).</summary>
    public bool Fwb => _table.Fwb;

    /// <summary>The TLB guest accesses translate through (its hit and miss counters show what an access did).</summary>
    public Stage2Tlb Tlb => _table.Tlb;

    /// <summary>The valid leaf covering <paramref name="ipa"/>, or null.</summary>
    public S2Leaf? GetLeaf(ulong ipa) => _table.GetLeaf(ipa);

    /// <summary>A guest access's translation (as the MMU does it): TLB hit, or a hardware walk (which fills the TLB) and its fault.</summary>
    public S2TranslationResult Translate(ulong ipa, S2AccessKind access) => _table.Translate(ipa, access, retry: false);

    /// <param name="retry">The retry after a handled fault: the walk finds the leaf just installed without walking the levels again.</param>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal S2TranslationResult Translate(ulong ipa, S2AccessKind access, bool retry) => _table.Translate(ipa, access, retry);

    /// <summary>The leaf behind a translation (or behind its permission fault).</summary>
    internal S2Leaf LeafOf(ulong ipa, in S2TranslationResult t) => _table.LeafOf(ipa, t);

    /// <summary>Every valid leaf in IPA order.</summary>
    public IEnumerable<S2Leaf> Leaves() => _table.Leaves();

    /// <summary>
    /// The CMOs a new leaf at <paramref name="pa"/> needs (stage2_map_walker_try_leaf), as the table reported them: a
    /// D-cache clean+invalidate to PoC for a cacheable leaf unless FWB, an I-cache invalidate to PoU for an executable
    /// leaf unless DIC. Both work by kernel VA, which only map memory has (<paramref name="mapMemory"/>, pfn_is_map_memory),
    /// so they are possible only for such pages. Nothing needed (FWB and DIC, or a non-cacheable non-executable leaf):
    /// the shared empty list, no allocation.
    /// </summary>
    internal static IReadOnlyList<CacheMaintenance> Needed(ulong pa, ulong size, bool mapMemory, List<S2CacheMaintenance> reported)
    {
        if (reported.Count == 0)
            return [];
        var dNeeded = false;
        var iNeeded = false;
        foreach (var c in reported)
        {
            dNeeded |= c.Kind == CacheOp.DcCivac;
            iNeeded |= c.Kind == CacheOp.IcIvau;
        }
        var vaText = VaText(mapMemory);
        var list = new List<CacheMaintenance>(2);
        if (dNeeded)
            list.Add(new CacheMaintenance(CacheOp.DcCivac, pa, size, true, mapMemory, $"no FWB: a cacheable leaf needs it; {vaText}"));
        if (iNeeded)
            list.Add(new CacheMaintenance(CacheOp.IcIvau, pa, size, true, mapMemory, $"no DIC: an executable leaf needs it; {vaText}"));
        return list;
    }

    /// <summary>
    /// For the <see cref="CmoRequired"/> events only: every CMO a new leaf of <paramref name="prot"/> is considered for, in the order KVM
    /// considers them, the <paramref name="needed"/> ones as they are and the others marked not needed with the reason
    /// (FWB skips the D-cache clean, DIC makes the I-cache invalidate a no-op).
    /// </summary>
    internal static IReadOnlyList<CacheMaintenance> Explain(ulong pa, ulong size, KvmPgtableProt prot, bool mapMemory,
        IReadOnlyList<CacheMaintenance> needed)
    {
        var cacheable = (prot & (KvmPgtableProt.DEVICE | KvmPgtableProt.NORMAL_NC)) == 0;
        var exec = (prot & KvmPgtableProt.X) != 0;
        var list = new List<CacheMaintenance>(2);
        var d = needed.FirstOrDefault(c => c.Kind == CacheOp.DcCivac);
        if (d.Needed)
            list.Add(d);
        else if (cacheable)
            list.Add(new CacheMaintenance(CacheOp.DcCivac, pa, size, false, mapMemory, "FWB: skipped"));
        var i = needed.FirstOrDefault(c => c.Kind == CacheOp.IcIvau);
        if (i.Needed)
            list.Add(i);
        else if (exec)
            list.Add(new CacheMaintenance(CacheOp.IcIvau, pa, size, false, mapMemory, "DIC: a no-op"));
        return list;
    }

    private static string VaText(bool mapMemory) =>
        mapMemory ? "the page has a kernel VA" : "no kernel VA: the pfn is outside the linear map";

    /// <summary>
    /// kvm_pgtable_stage2_map of one leaf; <paramref name="cmos"/> receives the maintenance it needed (see
    /// <see cref="Needed"/>; <paramref name="mapMemory"/> is pfn_is_map_memory of <paramref name="pa"/>).
    /// </summary>
    /// <param name="report">False: nobody looks at the CMOs (the fast path), so none are collected.</param>
    internal Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot, bool mapMemory, out IReadOnlyList<CacheMaintenance> cmos, bool report = true)
    {
        _cmos.Clear();
        var o = Observer;
        var e = _table.Map(ipa, size, pa, prot, _cmos);
        if (e == Errno.None && mapMemory)
            Perform(_cmos);
        cmos = e == Errno.None && report ? Needed(pa, size, mapMemory, _cmos) : [];
        if (o is not null && e == Errno.None)
        {
            Written(o, Stage2WriteKind.Map, ipa, size, GetLeaf(ipa));
            Cmos(o, Explain(pa, size, prot, mapMemory, report ? cmos : Needed(pa, size, mapMemory, _cmos)));
        }
        return e;
    }

    /// <summary>kvm_pgtable_stage2_relax_perms.</summary>
    internal Errno RelaxPerms(ulong ipa, KvmPgtableProt add, ulong pa, ulong size, out IReadOnlyList<CacheMaintenance> cmos)
    {
        _cmos.Clear();
        var e = _table.RelaxPerms(ipa, add, _cmos);
        if (e != Errno.None || _cmos.Count == 0)
        {
            cmos = [];
            if (e == Errno.None && Observer is { } observer)
                Written(observer, Stage2WriteKind.RelaxPerms, ipa, size, GetLeaf(ipa));
            return e;
        }
        var hasVa = _host.Memory.PfnIsMapMemory(pa >> PAGE_SHIFT);
        if (hasVa)
            Perform(_cmos);
        cmos = AddedPermissionCmos(pa, size, hasVa, _cmos);
        if (Observer is { } o)
        {
            Written(o, Stage2WriteKind.RelaxPerms, ipa, size, GetLeaf(ipa));
            Cmos(o, cmos);
        }
        return e;
    }

    /// <summary>
    /// The CMOs KVM performs by kernel VA, on the host's caches (only called when the pfn has one):
    /// dcache_clean_inval_poc is DC CIVAC over the range, icache_inval_pou is IC IVAU (D7.5.9, D7.5.7).
    /// </summary>
    private void Perform(List<S2CacheMaintenance> cmos)
    {
        foreach (var c in cmos)
        {
            _host.Caches.Maintain(c.Kind, c.Pa, c.Size);
        }
    }

    // A separate method: a lambda capturing the parameters in RelaxPerms would allocate its closure on every call.
    private static List<CacheMaintenance> AddedPermissionCmos(ulong pa, ulong size, bool hasVa, List<S2CacheMaintenance> reported) =>
        reported.Select(c => new CacheMaintenance(
            c.Kind, pa, size, true, hasVa,
            hasVa ? "added permission needs it; the page has a kernel VA" : "added permission needs it; no kernel VA")).ToList();

    /// <summary>kvm_stage2_unmap_range.</summary>
    internal void UnmapRange(ulong ipa, ulong size)
    {
        if (size == 0)
            return;
        _table.Unmap(ipa, size);
        if (Observer is { } o)
            Written(o, Stage2WriteKind.Unmap, ipa, size, null);
    }

    /// <summary>kvm_stage2_wp_range; without <paramref name="flush"/> the caller flushes the VMID's TLB entries later.</summary>
    internal void WriteProtectRange(ulong ipa, ulong size, bool flush = true)
    {
        if (size == 0)
            return;
        _table.WriteProtect(ipa, size, flush);
        if (Observer is { } o)
            Written(o, Stage2WriteKind.WriteProtect, ipa, size, null);
    }

    /// <summary>kvm_flush_remote_tlbs: every TLB entry of the VM.</summary>
    internal void FlushTlb() => _table.FlushTlb();
}
