using S2Lab.Arch.Cpu;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

public sealed partial class Stage2PageTable
{
    /// <summary>
    /// Tables for a KVM VM on <paramref name="cpu"/>: VTCR_EL2 as kvm_get_vtcr builds it for <paramref name="ipaBits"/>
    /// (4K pages, PS from the CPU's PARange), FWB from ID_AA64MMFR2_EL1.FWB (stage2_has_fwb) and DIC from CTR_EL0.
    /// Other options (VMID, TLB, memory, events) come from <paramref name="options"/>; its Fwb/Dic are overridden.
    /// </summary>
    /// <returns>The tables, or null with -EINVAL when the IPA size is outside 32..kvm_ipa_limit (kvm_arm_setup_stage2).</returns>
    public static Stage2PageTable? ForKvm(CpuModel cpu, int ipaBits, out Stage2Errno error, Stage2TableOptions? options = null)
    {
        error = Stage2Errno.None;
        if (ipaBits < 32 || ipaBits > cpu.IpaLimitBits)
        {
            error = Stage2Errno.EINVAL;
            return null;
        }

        var vtcr = VtcrEl2.ForIpaSize(ipaBits, cpu.PaBits);
        var validation = vtcr.Validate(Stage2Features.From(cpu));
        if (!validation.IsValid)
        {
            error = Stage2Errno.EINVAL;
            return null;
        }

        options = (options ?? new Stage2TableOptions()) with { Fwb = cpu.HasStage2Fwb, Dic = cpu.HasCacheDic };
        return new Stage2PageTable(validation.Geometry!, options);
    }

    /// <summary>
    /// Sets AF on the leaf mapping <paramref name="ipa"/> (kvm_pgtable_stage2_mkyoung, used when an access-flag fault is
    /// handled). No TLB maintenance: a TLB never holds an entry with AF = 0.
    /// </summary>
    /// <returns>0; -EAGAIN when nothing is mapped there; -ERANGE outside the IPA space.</returns>
    public Stage2Errno MakeYoung(ulong ipa)
    {
        if (ipa >= _geometry.IpaSpace)
        {
            return Stage2Errno.ERANGE;
        }

        var visitor = new AttrVisitor(this, B.Af, 0, AttrTlbi.None, S2WalkFlags.HandleFault, null);
        return ToErrno(Walk(ipa, 1, ref visitor));
    }

    /// <summary>
    /// Reports whether any leaf in the range has AF set and, if <paramref name="clear"/>, clears AF on them
    /// (kvm_pgtable_stage2_test_clear_young, for MMU-notifier ageing). Like Linux it does no TLB invalidation: a TLB entry
    /// may keep the page "young" in hardware terms, which only makes ageing less precise.
    /// </summary>
    public bool TestClearYoung(ulong ipa, ulong size, bool clear)
    {
        if (CheckRange(ipa, size) != Stage2Errno.None)
        {
            return false;
        }

        var visitor = new YoungVisitor(clear);
        Walk(ipa, size, ref visitor);
        return visitor.Young;
    }

    private struct YoungVisitor(bool clear) : IS2Visitor
    {
        public bool Young;

        public readonly S2WalkFlags Flags => S2WalkFlags.Leaf;

        public int Leaf(ref S2VisitContext ctx)
        {
            if (!IsValid(ctx.Old) || (ctx.Old & B.Af) == 0)
            {
                return 0;
            }

            Young = true;
            if (clear)
            {
                ctx.Ptep = ctx.Old & ~B.Af;
            }

            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }
}

public sealed partial class Stage2PageTable
{
    /// <summary>
    /// kvm_pgtable_stage2_flush (set/way emulation, guest cache toggling): a D-cache clean+invalidate to PoC for every
    /// cacheable leaf in the range; nothing with FWB. Returns the number of leaves that need it.
    /// </summary>
    public long FlushDcache(ulong ipa, ulong size, List<S2CacheMaintenance>? cmos = null)
    {
        if (Fwb || CheckRange(ipa, size) != Stage2Errno.None)
        {
            return 0;
        }

        var visitor = new FlushVisitor(this, cmos);
        Walk(ipa, size, ref visitor);
        return visitor.Leaves;
    }

    private struct FlushVisitor(Stage2PageTable t, List<S2CacheMaintenance>? cmos) : IS2Visitor
    {
        public long Leaves;

        public readonly S2WalkFlags Flags => S2WalkFlags.Leaf;

        public int Leaf(ref S2VisitContext ctx)
        {
            if (!t.IsCacheable(ctx.Old) || !new S2Descriptor(ctx.Old).IsLeaf(ctx.Level))
            {
                return 0;
            }

            ulong size = t._geometry.LevelSize(ctx.Level);
            Leaves++;
            t.Counters.DcacheCleanInvalidatePoc++;
            AddCmo(cmos, S2CmoKind.DcacheCleanInvalidatePoc, ctx.Addr & ~(size - 1), t.Follow(ctx.Old) & ~(size - 1), size);
            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }
}
