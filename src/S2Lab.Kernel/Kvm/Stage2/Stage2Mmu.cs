using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
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
        Fwb = host.Cpu.HasStage2Fwb;
        _table = new Stage2TableAdapter(host, ipaBits);
    }

    /// <summary>The IPA size (VTCR_EL2.T0SZ = 64 - IpaBits).</summary>
    public int IpaBits { get; }

    /// <summary>stage2_has_fwb(): HCR_EL2.FWB is set and the MT_S2_FWB_* encodings are used.</summary>
    public bool Fwb { get; }

    /// <summary>Leaves installed so far (kvm_pgtable_stage2_map calls that succeeded).</summary>
    public long MapCount { get; private set; }

    /// <summary>The valid leaf covering <paramref name="ipa"/>, or null.</summary>
    public Stage2Leaf? GetLeaf(ulong ipa) => _table.GetLeaf(ipa);

    /// <summary>Every valid leaf in IPA order.</summary>
    public IEnumerable<Stage2Leaf> Leaves() => _table.Leaves();

    /// <summary>The real-format table (descriptors, VTTBR, walk steps, counters).</summary>
    public Stage2PageTable Table => _table.Table;

    /// <summary>
    /// The CMOs a new leaf of <paramref name="prot"/> at <paramref name="pa"/> needs (stage2_map_walker_try_leaf): a
    /// D-cache clean+invalidate to PoC for a cacheable leaf unless FWB, an I-cache invalidate to PoU for an executable leaf
    /// unless DIC. <paramref name="reported"/> are the ones the table reported as needed. Both work by kernel VA, which
    /// only map memory has, so they are possible only for pfn_is_map_memory pages.
    /// </summary>
    internal IReadOnlyList<CacheMaintenance> Describe(ulong pa, ulong size, KvmPgtableProt prot, List<S2CacheMaintenance> reported)
    {
        var cacheable = (prot & (KvmPgtableProt.DEVICE | KvmPgtableProt.NORMAL_NC)) == 0;
        var exec = (prot & KvmPgtableProt.X) != 0;
        if (!cacheable && !exec && reported.Count == 0)
            return [];
        var hasVa = _host.Memory.PfnIsMapMemory(pa >> PAGE_SHIFT);
        var vaText = hasVa ? "the page has a kernel VA" : "no kernel VA: the pfn is outside the linear map";
        var dNeeded = reported.Any(c => c.Kind == S2CmoKind.DcacheCleanInvalidatePoc);
        var iNeeded = reported.Any(c => c.Kind == S2CmoKind.IcacheInvalidatePou);
        var list = new List<CacheMaintenance>(2);
        if (cacheable || dNeeded)
            list.Add(new CacheMaintenance(CmoKind.DcacheCleanInvalPoc, pa, size, dNeeded, hasVa,
                dNeeded ? $"no FWB: a cacheable leaf needs it; {vaText}" : "FWB: skipped"));
        if (exec || iNeeded)
            list.Add(new CacheMaintenance(CmoKind.IcacheInvalPou, pa, size, iNeeded, hasVa,
                iNeeded ? $"no DIC: an executable leaf needs it; {vaText}" : "DIC: a no-op"));
        return list;
    }

    /// <summary>kvm_pgtable_stage2_map of one leaf; <paramref name="cmos"/> receives the maintenance it needed.</summary>
    internal Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot, out IReadOnlyList<CacheMaintenance> cmos)
    {
        _cmos.Clear();
        var e = _table.Map(ipa, size, pa, prot, _cmos);
        if (e == Errno.None)
            MapCount++;
        cmos = e == Errno.None ? Describe(pa, size, prot, _cmos) : [];
        return e;
    }

    /// <summary>kvm_pgtable_stage2_relax_perms.</summary>
    internal Errno RelaxPerms(ulong ipa, KvmPgtableProt add, ulong pa, ulong size, out IReadOnlyList<CacheMaintenance> cmos)
    {
        _cmos.Clear();
        var e = _table.RelaxPerms(ipa, add, _cmos);
        var hasVa = _host.Memory.PfnIsMapMemory(pa >> PAGE_SHIFT);
        cmos = e != Errno.None ? [] : _cmos.Select(c => new CacheMaintenance(
            c.Kind == S2CmoKind.IcacheInvalidatePou ? CmoKind.IcacheInvalPou : CmoKind.DcacheCleanInvalPoc, pa, size, true, hasVa,
            hasVa ? "added permission needs it; the page has a kernel VA" : "added permission needs it; no kernel VA")).ToList();
        return e;
    }

    /// <summary>kvm_stage2_unmap_range.</summary>
    internal void UnmapRange(ulong ipa, ulong size)
    {
        if (size != 0)
            _table.Unmap(ipa, size);
    }

    /// <summary>kvm_stage2_wp_range.</summary>
    internal void WriteProtectRange(ulong ipa, ulong size)
    {
        if (size != 0)
            _table.WriteProtect(ipa, size);
    }
}
