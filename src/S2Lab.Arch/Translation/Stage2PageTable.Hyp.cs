using S2Lab.Arch.Caches;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

public sealed partial class Stage2PageTable
{
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
            AddCmo(cmos, CacheOp.DcCivac, ctx.Addr & ~(size - 1), t.Follow(ctx.Old) & ~(size - 1), size);
            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }
}
