using System.Runtime.CompilerServices;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

public sealed partial class Stage2PageTable
{
    private const int E2BIG = -(int)Stage2Errno.E2BIG;
    private const int EAGAIN = -(int)Stage2Errno.EAGAIN;
    private const int ENOMEM = -(int)Stage2Errno.ENOMEM;

    /// <summary>
    /// Maps [<paramref name="ipa"/>, +<paramref name="size"/>) to [<paramref name="pa"/>, +size) with the leaf attributes
    /// (kvm_pgtable_stage2_map). At each address the largest leaf is used whose size fits the remaining range, whose IPA
    /// and PA are both aligned to it, that the level allows (Linux: KVM_PGTABLE_MIN_BLOCK_LEVEL and the architecture) and
    /// that is at most <paramref name="maxMappingSize"/> (the granule forces pages, like force_pte).
    /// Linux semantics apply where the range meets existing mappings: an entry that already holds the same output and
    /// attributes (permissions aside) is left alone (-EAGAIN, see <paramref name="handleFault"/>); a different valid leaf
    /// is replaced by break-before-make; a block that cannot stay is replaced by an empty table, so the part of the block
    /// outside the range becomes unmapped (faulted back later); a table where a block fits is replaced by the block and freed.
    /// </summary>
    /// <param name="ipa">First IPA, granule aligned.</param>
    /// <param name="size">Bytes, a multiple of the granule.</param>
    /// <param name="pa">Output address of <paramref name="ipa"/>, granule aligned.</param>
    /// <param name="attributes">Leaf attributes (MemAttr, permissions, SH, AF, ...).</param>
    /// <param name="maxMappingSize">Largest leaf allowed (PAGE_SIZE forces pages; PMD_SIZE allows 2M blocks with 4K).</param>
    /// <param name="cmos">Receives the cache maintenance the new leaves need (merged ranges), or null.</param>
    /// <param name="handleFault">A fault-handler walk (KVM_PGTABLE_WALK_HANDLE_FAULT): stop and return -EAGAIN at an entry that needs no update.</param>
    /// <returns>0, -EINVAL (unaligned, zero size, PA beyond the OA size, max size below the granule), -ERANGE, -ENOMEM, -EAGAIN.</returns>
    public Stage2Errno Map(ulong ipa, ulong size, ulong pa, S2LeafAttributes attributes, ulong maxMappingSize = ulong.MaxValue,
        List<S2CacheMaintenance>? cmos = null, bool handleFault = false)
    {
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        if ((pa & (_geometry.TableBytes - 1)) != 0 || pa + size < pa || pa + size > _oaLimit || maxMappingSize < _geometry.TableBytes)
        {
            return Stage2Errno.EINVAL;
        }

        int minLeafLevel = 3;
        while (minLeafLevel > _geometry.StartLevel && _geometry.LevelSize(minLeafLevel - 1) <= maxMappingSize)
        {
            minLeafLevel--;
        }

        var visitor = new MapVisitor(this, pa, attributes.ToTemplate(_format), minLeafLevel, cmos,
            handleFault ? S2WalkFlags.HandleFault : S2WalkFlags.None);
        int ret = Walk(ipa, size, ref visitor);
        return ToErrno(ret);
    }

    private struct MapVisitor : IS2Visitor
    {
        private readonly Stage2PageTable _t;
        private readonly ulong _phys;
        private readonly ulong _attr;
        private readonly int _minLeafLevel;
        private readonly List<S2CacheMaintenance>? _cmos;

        public MapVisitor(Stage2PageTable t, ulong phys, ulong attr, int minLeafLevel, List<S2CacheMaintenance>? cmos, S2WalkFlags extra)
        {
            _t = t;
            _phys = phys;
            _attr = attr;
            _minLeafLevel = minLeafLevel;
            _cmos = cmos;
            Flags = S2WalkFlags.Leaf | S2WalkFlags.TablePre | extra;
        }

        public S2WalkFlags Flags { get; }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly ulong Phys(ref S2VisitContext ctx) => _phys + (ctx.Addr - ctx.Start);

        /// <summary>stage2_leaf_mapping_allowed / kvm_block_mapping_supported.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly bool LeafAllowed(ref S2VisitContext ctx)
        {
            int level = ctx.Level;
            if (level < _minLeafLevel)
            {
                return false;
            }

            if (level != 3 && (level < _t._geometry.MinBlockLevel || !_t._geometry.BlockAllowedAtLevel(level)))
            {
                return false;
            }

            ulong granule = _t._geometry.LevelSize(level);
            if (granule > ctx.End - ctx.Addr)
            {
                return false;
            }

            return ((Phys(ref ctx) | ctx.Addr) & (granule - 1)) == 0;
        }

        /// <summary>stage2_map_walker_try_leaf.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly int TryLeaf(ref S2VisitContext ctx)
        {
            if (!LeafAllowed(ref ctx))
            {
                return E2BIG;
            }

            int level = ctx.Level;
            ulong phys = Phys(ref ctx);
            ulong newPte = S2Descriptor.EncodeAddress(phys, _t._format) | _attr | B.Valid | (level == 3 ? B.TableOrPage : 0);
            ulong old = ctx.Old;

            // stage2_pte_needs_update: same mapping, or only the permissions differ -> leave it (the permission fault path relaxes).
            if (IsValid(old) && ((old ^ newPte) & ~B.PermissionMask) == 0)
            {
                _t.Counters.MapNoChange++;
                return EAGAIN;
            }

            // Only software bits change: store them and go, no BBM needed.
            if (IsValid(old) && ((old ^ newPte) & ~B.SoftwareMask) == 0)
            {
                ctx.Ptep = newPte;
                return 0;
            }

            _t.BreakPte(ref ctx);
            ulong size = _t._geometry.LevelSize(level);
            _t.NewLeafCmos(newPte, ctx.Addr, size, _cmos);
            ctx.Ptep = newPte;
            _t.Counters.LeavesInstalled++;
            _t.NoteInstalled(ctx.Addr & ~(size - 1), newPte, level, ctx.DescriptorPa);
            return 0;
        }

        public readonly int Leaf(ref S2VisitContext ctx)
        {
            int ret = TryLeaf(ref ctx);
            if (ret != E2BIG)
            {
                return ret;
            }

            if (ctx.Level == 3)
            {
                return -(int)Stage2Errno.EINVAL;
            }

            // stage2_map_walk_leaf: the entry (invalid, or a block that cannot stay) becomes a new, empty table.
            if (!_t.TryAllocTable(out ulong childPa))
            {
                return ENOMEM;
            }

            _t.BreakPte(ref ctx);
            ctx.Ptep = S2Descriptor.EncodeAddress(childPa, _t._format) | B.Valid | B.TableOrPage;
            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx)
        {
            // stage2_map_walk_table_pre: a block fits where a table is -> replace the table and free it.
            if (!LeafAllowed(ref ctx))
            {
                return 0;
            }

            ulong old = ctx.Old;
            int ret = TryLeaf(ref ctx);
            if (ret != 0)
            {
                return ret;
            }

            _t.FreeUnlinkedTable(_t.Follow(old), ctx.Level + 1);
            return 0;
        }

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }
}
