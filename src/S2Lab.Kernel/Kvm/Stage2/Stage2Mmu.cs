using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>
/// A VM's stage-2 MMU (struct kvm_s2_mmu): the page table, whether it uses FWB encodings (stage2_has_fwb), and the
/// cache maintenance KVM's mm_ops would perform when leaves are installed.
/// </summary>
public sealed class Stage2Mmu
{
    private readonly IStage2Table _table;
    private readonly Host _host;

    internal Stage2Mmu(Host host, int ipaBits)
    {
        _host = host;
        IpaBits = ipaBits;
        Fwb = host.Cpu.HasStage2Fwb;
        _table = new InterimStage2Table(Fwb);
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

    public int LeafCount => _table.LeafCount;

    /// <summary>
    /// The CMOs that installing a leaf of <paramref name="prot"/> at <paramref name="pa"/> needs (stage2_map_walker_try_leaf):
    /// D-cache clean+invalidate to PoC for a cacheable leaf unless FWB; I-cache invalidate to PoU for an executable leaf
    /// unless DIC. Both work by kernel VA, which only map memory has.
    /// </summary>
    public IReadOnlyList<CacheMaintenance> CmosFor(ulong pa, ulong size, KvmPgtableProt prot)
    {
        var cacheable = (prot & (KvmPgtableProt.DEVICE | KvmPgtableProt.NORMAL_NC)) == 0;
        var exec = (prot & KvmPgtableProt.X) != 0;
        if (!cacheable && !exec)
            return [];
        var hasVa = _host.Memory.PfnIsMapMemory(pa >> PAGE_SHIFT);
        var vaText = hasVa ? "the page has a kernel VA" : "no kernel VA: the pfn is outside the linear map";
        var list = new List<CacheMaintenance>(2);
        if (cacheable)
            list.Add(new CacheMaintenance(CmoKind.DcacheCleanInvalPoc, pa, size, !Fwb, hasVa,
                Fwb ? "FWB: skipped" : $"no FWB: a cacheable leaf needs it; {vaText}"));
        if (exec)
            list.Add(new CacheMaintenance(CmoKind.IcacheInvalPou, pa, size, !_host.Cpu.HasCacheDic, hasVa,
                _host.Cpu.HasCacheDic ? "DIC: a no-op" : $"no DIC: an executable leaf needs it; {vaText}"));
        return list;
    }

    internal Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot)
    {
        var e = _table.Map(ipa, size, pa, prot);
        if (e == Errno.None)
            MapCount++;
        return e;
    }

    internal Errno RelaxPerms(ulong ipa, KvmPgtableProt add) => _table.RelaxPerms(ipa, add);

    /// <summary>kvm_stage2_unmap_range.</summary>
    internal void UnmapRange(ulong ipa, ulong size)
    {
        if (size != 0 && _table.LeafCount != 0)
            _table.Unmap(ipa, size);
    }

    /// <summary>kvm_stage2_wp_range.</summary>
    internal void WriteProtectRange(ulong ipa, ulong size)
    {
        if (size != 0 && _table.LeafCount != 0)
            _table.WriteProtect(ipa, size);
    }
}
