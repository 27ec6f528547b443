using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>
/// The VM's stage-2 tables in the real descriptor format (<see cref="Stage2PageTable"/>, VTCR_EL2 as kvm_get_vtcr builds
/// it), driven the way KVM's kvm_pgtable_stage2_* calls drive them, with KVM's prot-to-attribute rules (rule 14).
/// </summary>
internal sealed class Stage2TableAdapter : IStage2Table
{
    private readonly Stage2PageTable _table;
    private long _maps;

    public Stage2TableAdapter(Host host, int ipaBits)
    {
        // The caller has already clamped ipaBits to 32..kvm_ipa_limit (KVM_CREATE_VM checks it), so this cannot fail.
        _table = KvmStage2.Create(host.Cpu, ipaBits, out var error)
            ?? throw new InvalidOperationException($"no stage-2 table for a {ipaBits}-bit IPA on {host.Cpu.Name}: {error}");
    }

    /// <summary>The TLB the VM's translations go through.</summary>
    public Stage2Tlb Tlb => _table.Tlb;

    /// <summary>stage2_has_fwb(): the table was built with HCR_EL2.FWB (KvmStage2.Create sets it when the CPU has FWB).</summary>
    public bool Fwb => _table.Fwb;

    /// <summary>stage2_set_prot_attr (rule 14): the MemAttr for a prot, or null for a forbidden combination.</summary>
    public static byte? MemAttrFor(KvmPgtableProt prot, bool fwb)
    {
        var dev = (prot & KvmPgtableProt.DEVICE) != 0;
        var nc = (prot & KvmPgtableProt.NORMAL_NC) != 0;
        var x = (prot & KvmPgtableProt.X) != 0;
        if ((dev && nc) || (dev && x) || (nc && x))
            return null;
        var type = dev ? KvmS2MemType.DeviceNGnRE : nc ? KvmS2MemType.NormalNc : KvmS2MemType.Normal;
        return KvmS2MemAttr.PageS2MemAttr(type, fwb);
    }

    /// <summary>
    /// The R/W/X bits of a prot as S2Permissions: a cast, because S2Permissions uses kvm_pgtable_prot's values
    /// (X = bit 0, W = bit 1, R = bit 2; tested in Arch). The memory-type bits are masked off.
    /// </summary>
    private static S2Permissions Perms(KvmPgtableProt prot) => (S2Permissions)(int)(prot & KvmPgtableProt.RWX);

    public Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot, List<S2CacheMaintenance>? cmos)
    {
        if (MemAttrFor(prot, Fwb) is not { } memAttr)
            return Errno.EINVAL;
        var r = _table.Map(ipa, size, pa, new S2LeafAttributes(memAttr, Perms(prot)), size, cmos, handleFault: true);
        if (r == Stage2Errno.None)
            _maps++;
        // -EAGAIN: the entry already holds this mapping; user_mem_abort treats it as success.
        return r is Stage2Errno.None or Stage2Errno.EAGAIN ? Errno.None : (Errno)(int)r;
    }

    public void Unmap(ulong ipa, ulong size)
    {
        if (_maps == 0 || !Clamp(ref ipa, ref size))
            return;
        _table.Unmap(ipa, size);
    }

    private bool Clamp(ref ulong ipa, ref ulong size)
    {
        var space = _table.Geometry.IpaSpace;
        if (ipa >= space || size == 0)
            return false;
        var end = ipa + size < ipa || ipa + size > space ? space : ipa + size;
        ipa = AlignDown(ipa, PAGE_SIZE);
        size = AlignUp(end, PAGE_SIZE) - ipa;
        return true;
    }

    public S2Leaf? GetLeaf(ulong ipa)
    {
        if (_maps == 0 || ipa >= _table.Geometry.IpaSpace)
            return null;
        var l = _table.GetLeaf(ipa);
        return l.IsValid ? l : null;
    }

    /// <summary>
    /// The MMU translating a guest access: the VM's TLB, else a hardware walk that fills it (faults are never cached).
    /// A change made by break-before-make or unmap invalidates the TLB, so the next access misses and walks.
    /// </summary>
    /// <param name="retry">The access is retried after the fault handler mapped it (<see cref="Stage2PageTable.TranslateRetry"/>).</param>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public S2TranslationResult Translate(ulong ipa, S2AccessKind access, bool retry) =>
        retry ? _table.TranslateRetry(ipa, access) : _table.Translate(ipa, access);

    /// <summary>The leaf a translation used (descriptor and level from the TLB or the walk).</summary>
    public S2Leaf LeafOf(ulong ipa, in S2TranslationResult t) => _table.LeafAt(ipa, t.Leaf, t.Level);

    public void WriteProtect(ulong ipa, ulong size, bool flush = true)
    {
        if (_maps == 0 || !Clamp(ref ipa, ref size))
            return;
        _table.WriteProtect(ipa, size);
        if (flush)
            _table.InvalidateTlbVmid(); // kvm_mmu_wp_memory_region flushes the VMID after write-protecting
    }

    /// <summary>TLBI VMALLS12E1IS for the VM.</summary>
    public void FlushTlb()
    {
        if (_maps != 0)
            _table.InvalidateTlbVmid();
    }

    public Errno RelaxPerms(ulong ipa, KvmPgtableProt add, List<S2CacheMaintenance>? cmos)
    {
        var r = _table.RelaxPermissions(ipa, Perms(add), cmos);
        return r is Stage2Errno.None ? Errno.None : (Errno)(int)r;
    }

    public IEnumerable<S2Leaf> Leaves() =>
        _maps == 0 ? [] : _table.CollectLeaves(0, _table.Geometry.IpaSpace);
}
