using S2Lab.Arch.Caches;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

public sealed partial class Stage2PageTable
{
    // ---------------------------------------------------------------------------------------------------------------
    // Unmap (kvm_pgtable_stage2_unmap / stage2_unmap_walker)

    /// <summary>
    /// Removes every leaf the range touches (kvm_pgtable_stage2_unmap). As in Linux, a block that the range only partly
    /// covers is removed whole (the rest is faulted back lazily), and a table left empty is unlinked and freed.
    /// Each removed leaf is invalidated in the TLB by IPA (or, with <see cref="Stage2TableOptions.TlbiRange"/>, the whole
    /// range once at the end); a cacheable leaf without FWB needs a D-cache clean+invalidate to PoC, reported in <paramref name="cmos"/>.
    /// </summary>
    /// <returns>0, -EINVAL (unaligned or zero size), -ERANGE.</returns>
    public Stage2Errno Unmap(ulong ipa, ulong size, List<S2CacheMaintenance>? cmos = null)
    {
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        var visitor = new UnmapVisitor(this, cmos);
        int ret = Walk(ipa, size, ref visitor);
        if (Options.TlbiRange)
        {
            InvalidateTlbRange(ipa, size);
        }

        return ToErrno(ret);
    }

    private readonly struct UnmapVisitor(Stage2PageTable t, List<S2CacheMaintenance>? cmos) : IS2Visitor
    {
        public S2WalkFlags Flags => S2WalkFlags.Leaf | S2WalkFlags.TablePost;

        public int Leaf(ref S2VisitContext ctx)
        {
            ulong old = ctx.Old;
            if (!IsValid(old))
            {
                return 0;
            }

            bool needFlush = !t.Fwb && t.IsCacheable(old);
            ulong size = t._geometry.LevelSize(ctx.Level);
            ulong addr = ctx.Addr & ~(size - 1);
            ctx.Ptep = 0;
            t.Counters.LeavesRemoved++;
            t.Record(Stage2EventKind.LeafRemoved, addr, size, ctx.Level, old, 0);
            if (!t.Options.TlbiRange)
            {
                t.InvalidateTlbIpa(addr, ctx.Level);
            }

            if (needFlush)
            {
                t.Counters.DcacheCleanInvalidatePoc++;
                AddCmo(cmos, CacheOp.DcCivac, addr, t.Follow(old) & ~(size - 1), size);
            }

            return 0;
        }

        public int TablePre(ref S2VisitContext ctx) => 0;

        public int TablePost(ref S2VisitContext ctx)
        {
            ulong childPa = t.Follow(ctx.Old);
            if (t._memory.PhysToVirt(childPa, t._geometry.EntriesPerTable).ContainsAnyExcept(0UL))
            {
                return 0;
            }

            ulong size = t._geometry.LevelSize(ctx.Level);
            ulong addr = ctx.Addr & ~(size - 1);
            ctx.Ptep = 0;
            t.Record(Stage2EventKind.TableRemoved, addr, size, ctx.Level, ctx.Old, 0);
            if (!t.Options.TlbiRange)
            {
                t.InvalidateTlbIpa(addr, ctx.Level); // walk-cache entries for the table (TTL = the table entry's level)
            }

            t.FreeTable(childPa);
            return 0;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Attribute updates (stage2_update_leaf_attrs / stage2_attr_walker)

    private enum AttrTlbi
    {
        /// <summary>No TLB maintenance (the caller flushes, as after kvm_pgtable_stage2_wrprotect).</summary>
        None,

        /// <summary>TLBI by IPA for each changed leaf.</summary>
        PerLeaf,
    }

    private struct AttrVisitor(Stage2PageTable t, ulong set, ulong clear, AttrTlbi tlbi, S2WalkFlags extra, List<S2CacheMaintenance>? cmos) : IS2Visitor
    {
        public int Level = -2;
        public ulong OldPte;
        public long Changed;

        public readonly S2WalkFlags Flags => S2WalkFlags.Leaf | extra;

        public int Leaf(ref S2VisitContext ctx)
        {
            ulong old = ctx.Old;
            if (!IsValid(old))
            {
                return EAGAIN;
            }

            Level = ctx.Level;
            OldPte = old;
            ulong pte = (old & ~clear) | set;
            if (pte == old)
            {
                return 0;
            }

            ulong size = t._geometry.LevelSize(ctx.Level);
            ulong addr = ctx.Addr & ~(size - 1);

            // Invalidate the I-cache before the guest can execute from the leaf (X being added).
            if (!t.Dic && IsExecutable(pte) && !IsExecutable(old))
            {
                t.Counters.IcacheInvalidatePou++;
                AddCmo(cmos, CacheOp.IcIvau, addr, t.Follow(pte) & ~(size - 1), size);
            }

            // A permission/attribute change of a live leaf needs no break-before-make (only the output address or
            // size would); the TLB may keep the old permissions until invalidated.
            ctx.Ptep = pte;
            Changed++;
            t.Counters.PermissionUpdates++;
            if (tlbi == AttrTlbi.PerLeaf)
            {
                t.InvalidateTlbIpa(addr, ctx.Level);
            }

            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }

    private static (ulong Set, ulong Clear) PermissionBits(S2Permissions perms, bool adding)
    {
        ulong set = 0, clear = 0;
        if ((perms & S2Permissions.Read) != 0)
        {
            (adding ? ref set : ref clear) |= B.S2ApRead;
        }

        if ((perms & S2Permissions.Write) != 0)
        {
            (adding ? ref set : ref clear) |= B.S2ApWrite;
        }

        if ((perms & S2Permissions.Execute) != 0)
        {
            // Linux relaxes X by clearing XN (bit 54); restricting sets it.
            if (adding)
            {
                clear |= B.XnMask;
            }
            else
            {
                set |= B.Xn1;
            }
        }

        return (set, clear);
    }

    /// <summary>
    /// Adds permissions to the leaf that maps <paramref name="ipa"/> (kvm_pgtable_stage2_relax_perms, the permission-fault
    /// path): S2AP R/W set, XN cleared for X. The I-cache is invalidated first when X is added without DIC (reported in
    /// <paramref name="cmos"/>). Then the TLB entry for the IPA is invalidated (locally in Linux), also when nothing
    /// changed, so a spurious fault is not taken again.
    /// </summary>
    /// <returns>0; -EAGAIN when no valid leaf maps the address; -EINVAL, -ERANGE for a bad address.</returns>
    public Stage2Errno RelaxPermissions(ulong ipa, S2Permissions add, List<S2CacheMaintenance>? cmos = null)
    {
        if (ipa >= _geometry.IpaSpace)
        {
            return Stage2Errno.ERANGE;
        }

        if ((add & ~S2Permissions.All) != 0)
        {
            return Stage2Errno.EINVAL;
        }

        (ulong set, ulong clear) = PermissionBits(add, adding: true);
        var visitor = new AttrVisitor(this, set, clear, AttrTlbi.None, S2WalkFlags.HandleFault, cmos);
        int ret = Walk(ipa, 1, ref visitor);
        if (ret == 0 || ret == EAGAIN)
        {
            if (visitor.Level >= 0)
            {
                InvalidateTlbIpa(ipa & ~(_geometry.LevelSize(visitor.Level) - 1), visitor.Level);
            }
        }

        return ToErrno(ret);
    }

    /// <summary>
    /// Removes permissions from every leaf in the range and invalidates each changed leaf in the TLB by IPA.
    /// Returns the number of leaves changed through <paramref name="changed"/>.
    /// </summary>
    /// <returns>0, -EINVAL, -ERANGE.</returns>
    public Stage2Errno RestrictPermissions(ulong ipa, ulong size, S2Permissions remove, out long changed)
    {
        changed = 0;
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        (ulong set, ulong clear) = PermissionBits(remove, adding: false);
        var visitor = new AttrVisitor(this, set, clear, AttrTlbi.PerLeaf, S2WalkFlags.None, null);
        int ret = Walk(ipa, size, ref visitor);
        changed = visitor.Changed;
        return ToErrno(ret);
    }

    /// <summary>
    /// Clears write permission (S2AP[1]) on every leaf in the range for dirty logging (kvm_pgtable_stage2_wrprotect).
    /// Like Linux it does <b>no</b> TLB invalidation: the caller must invalidate the VMID afterwards
    /// (<see cref="InvalidateTlbVmid"/>, as kvm_mmu_wp_memory_region does); until then writes can still hit the TLB.
    /// </summary>
    /// <returns>0, -EINVAL, -ERANGE.</returns>
    public Stage2Errno WriteProtect(ulong ipa, ulong size)
    {
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        var visitor = new AttrVisitor(this, 0, B.S2ApWrite, AttrTlbi.None, S2WalkFlags.None, null);
        return ToErrno(Walk(ipa, size, ref visitor));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Split (kvm_pgtable_stage2_split / stage2_split_walker)

    /// <summary>
    /// Splits every block the range touches into a fully populated table of pages with the same output addresses and
    /// attributes (kvm_pgtable_stage2_split, as used to eagerly split when dirty logging starts). The new subtree is built
    /// unlinked, without CMOs (the memory is already mapped), then swapped in by break-before-make.
    /// </summary>
    /// <returns>0, -EINVAL, -ERANGE, -ENOMEM.</returns>
    public Stage2Errno Split(ulong ipa, ulong size)
    {
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        var visitor = new SplitVisitor(this);
        return ToErrno(Walk(ipa, size, ref visitor));
    }

    private readonly struct SplitVisitor(Stage2PageTable t) : IS2Visitor
    {
        public S2WalkFlags Flags => S2WalkFlags.Leaf;

        public int Leaf(ref S2VisitContext ctx)
        {
            ulong old = ctx.Old;
            if (!IsValid(old) || ctx.Level == 3)
            {
                return 0;
            }

            if (!t.TryBuildPopulatedTable(old, ctx.Level, out ulong childPa))
            {
                return ENOMEM;
            }

            ulong size = t._geometry.LevelSize(ctx.Level);
            t.BreakPte(ref ctx);
            ulong table = S2Descriptor.EncodeAddress(childPa, t._format) | B.Valid | B.TableOrPage;
            ctx.Ptep = table;
            t.Counters.BlocksSplit++;
            t.Record(Stage2EventKind.BlockSplit, ctx.Addr & ~(size - 1), size, ctx.Level, old, table);
            return 0;
        }

        public int TablePre(ref S2VisitContext ctx) => 0;

        public int TablePost(ref S2VisitContext ctx) => 0;
    }

    /// <summary>kvm_pgtable_stage2_create_unlinked with force_pte: the table below a block, down to pages.</summary>
    private bool TryBuildPopulatedTable(ulong block, int blockLevel, out ulong tablePa)
    {
        if (!TryAllocTable(out tablePa))
        {
            return false;
        }

        int level = blockLevel + 1;
        ulong childSize = _geometry.LevelSize(level);
        ulong oa = new S2Descriptor(block).LeafOutputAddress(_granule, blockLevel, _format);
        ulong attrs = block & ~S2Descriptor.AddressFieldMask(_granule, _format) & ~3UL;
        if (_format == S2AddressFormat.Lpa2)
        {
            attrs &= ~B.ShMask;
        }

        Span<ulong> t = _memory.PhysToVirt(tablePa, _geometry.EntriesPerTable);
        for (int i = 0; i < t.Length; i++)
        {
            ulong childOa = oa + (ulong)i * childSize;
            if (level == 3)
            {
                t[i] = S2Descriptor.EncodeAddress(childOa, _format) | attrs | B.Valid | B.TableOrPage;
                continue;
            }

            ulong childBlock = S2Descriptor.EncodeAddress(childOa, _format) | attrs | B.Valid;
            if (!TryBuildPopulatedTable(childBlock, level, out ulong grandChild))
            {
                // Undo what was built so far: free the tables linked in this one, then this one.
                t = _memory.PhysToVirt(tablePa, _geometry.EntriesPerTable);
                for (int j = 0; j < i; j++)
                {
                    FreeTable(Follow(t[j]));
                }

                FreeTable(tablePa);
                tablePa = 0;
                return false;
            }

            t = _memory.PhysToVirt(tablePa, _geometry.EntriesPerTable); // storage may have grown
            t[i] = S2Descriptor.EncodeAddress(grandChild, _format) | B.Valid | B.TableOrPage;
        }

        return true;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Collapse: a table whose leaves map one aligned, contiguous block with equal attributes becomes that block.

    /// <summary>
    /// Replaces each table in the range whose entries are all valid leaves mapping one contiguous output range, aligned
    /// to the block size, with identical attributes, by a single block, bottom-up (pages to a 2M block, then 2M blocks to a
    /// 1G block), where the level allows blocks. This is what Linux does when a block-sized fault maps over an existing
    /// table (stage2_map_walk_table_pre): break-before-make with a TLB range invalidation, the new block's CMOs, the old
    /// tables freed. Tables only partly inside the range are left alone.
    /// </summary>
    /// <returns>0, -EINVAL, -ERANGE.</returns>
    public Stage2Errno Collapse(ulong ipa, ulong size, out long collapsed, List<S2CacheMaintenance>? cmos = null)
    {
        collapsed = 0;
        Stage2Errno check = CheckRange(ipa, size);
        if (check != Stage2Errno.None)
        {
            return check;
        }

        var visitor = new CollapseVisitor(this, cmos);
        int ret = Walk(ipa, size, ref visitor);
        collapsed = visitor.Collapsed;
        return ToErrno(ret);
    }

    private struct CollapseVisitor(Stage2PageTable t, List<S2CacheMaintenance>? cmos) : IS2Visitor
    {
        public long Collapsed;

        public readonly S2WalkFlags Flags => S2WalkFlags.TablePost;

        public readonly int Leaf(ref S2VisitContext ctx) => 0;

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public int TablePost(ref S2VisitContext ctx)
        {
            int level = ctx.Level;
            var geo = t._geometry;
            if (level < geo.MinBlockLevel || !geo.BlockAllowedAtLevel(level))
            {
                return 0;
            }

            ulong size = geo.LevelSize(level);
            ulong addr = ctx.Addr & ~(size - 1);
            if (addr < ctx.Start || addr + size > ctx.End || addr + size < addr)
            {
                return 0;
            }

            ulong childPa = t.Follow(ctx.Old);
            Span<ulong> child = t._memory.PhysToVirt(childPa, geo.EntriesPerTable);
            int childLevel = level + 1;
            ulong childSize = geo.LevelSize(childLevel);
            ulong first = child[0];
            if (!new S2Descriptor(first).IsLeaf(childLevel))
            {
                return 0;
            }

            ulong addrMask = S2Descriptor.AddressFieldMask(t._granule, t._format);
            ulong attrs = first & ~addrMask & ~3UL;
            ulong oa = new S2Descriptor(first).LeafOutputAddress(t._granule, childLevel, t._format);
            if ((oa & (size - 1)) != 0)
            {
                return 0;
            }

            for (int i = 1; i < child.Length; i++)
            {
                var d = new S2Descriptor(child[i]);
                if (!d.IsLeaf(childLevel) || (child[i] & ~addrMask & ~3UL) != attrs ||
                    d.LeafOutputAddress(t._granule, childLevel, t._format) != oa + (ulong)i * childSize)
                {
                    return 0;
                }
            }

            ulong block = S2Descriptor.EncodeAddress(oa, t._format) | attrs | B.Valid;
            t.BreakPte(ref ctx); // a table: TLB invalidation of its whole range
            t.NewLeafCmos(block, addr, size, cmos);
            ctx.Ptep = block;
            t.Counters.TablesCollapsed++;
            t.Counters.LeavesInstalled++;
            t.Record(Stage2EventKind.TableCollapsed, addr, size, level, ctx.Old, block);
            t.FreeUnlinkedTable(childPa, childLevel);
            Collapsed++;
            return 0;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Lookups

    /// <summary>
    /// The entry where a walk for <paramref name="ipa"/> stops: the leaf and its level, or an invalid entry and the level
    /// it was found at (kvm_pgtable_get_leaf). No TLB involved.
    /// </summary>
    public S2Leaf GetLeaf(ulong ipa)
    {
        if (ipa >= _geometry.IpaSpace)
        {
            return LeafAt(ipa, S2Descriptor.Invalid, _geometry.StartLevel);
        }

        var visitor = new LeafVisitor();
        Walk(ipa, 1, ref visitor);
        return LeafAt(ipa, new S2Descriptor(visitor.Pte), visitor.Level);
    }

    private struct LeafVisitor : IS2Visitor
    {
        public ulong Pte;
        public int Level;

        public readonly S2WalkFlags Flags => S2WalkFlags.Leaf;

        public int Leaf(ref S2VisitContext ctx)
        {
            Pte = ctx.Old;
            Level = ctx.Level;
            return 0;
        }

        public readonly int TablePre(ref S2VisitContext ctx) => 0;

        public readonly int TablePost(ref S2VisitContext ctx) => 0;
    }

    /// <summary>
    /// The walk for <paramref name="ipa"/> step by step: for each level, the table, the index, the descriptor's address
    /// and value, ending at a leaf or an invalid entry. For explanations.
    /// </summary>
    public IReadOnlyList<S2WalkStep> WalkSteps(ulong ipa)
    {
        var steps = new List<S2WalkStep>(5);
        if (ipa >= _geometry.IpaSpace)
        {
            return steps;
        }

        var visitor = new StepsVisitor(this, steps);
        Walk(ipa, 1, ref visitor);
        return steps;
    }

    private readonly struct StepsVisitor(Stage2PageTable t, List<S2WalkStep> steps) : IS2Visitor
    {
        public S2WalkFlags Flags => S2WalkFlags.Leaf | S2WalkFlags.TablePre;

        private void Add(ref S2VisitContext ctx)
        {
            int index = t._geometry.Index(ctx.Addr, ctx.Level);
            ulong tablePa = ctx.DescriptorPa - ((ulong)index << 3);
            steps.Add(new S2WalkStep(ctx.Level, index, tablePa, ctx.DescriptorPa, new S2Descriptor(ctx.Old)));
        }

        public int Leaf(ref S2VisitContext ctx)
        {
            Add(ref ctx);
            return 0;
        }

        public int TablePre(ref S2VisitContext ctx)
        {
            Add(ref ctx);
            return 0;
        }

        public int TablePost(ref S2VisitContext ctx) => 0;
    }

    /// <summary>
    /// The entry <paramref name="descriptor"/> at <paramref name="level"/> as this table's <see cref="S2Leaf"/>: its IPA is
    /// <paramref name="ipa"/> aligned down to the level's size, read with the table's granule, address format and FWB.
    /// </summary>
    public S2Leaf LeafAt(ulong ipa, S2Descriptor descriptor, int level) =>
        new(ipa & ~(_geometry.LevelSize(level) - 1), descriptor, level, _geometry.Granule, _geometry.AddressFormat, Fwb);

    /// <summary>Every valid leaf the range touches, in address order (for dumps and tests; allocates a list).</summary>
    public List<S2Leaf> CollectLeaves(ulong ipa, ulong size)
    {
        var leaves = new List<S2Leaf>();
        var visitor = new CollectVisitor(this, leaves);
        Walk(ipa, size, ref visitor);
        return leaves;
    }

    private readonly struct CollectVisitor(Stage2PageTable t, List<S2Leaf> leaves) : IS2Visitor
    {
        public S2WalkFlags Flags => S2WalkFlags.Leaf;

        public int Leaf(ref S2VisitContext ctx)
        {
            if (new S2Descriptor(ctx.Old).IsLeaf(ctx.Level))
            {
                leaves.Add(t.LeafAt(ctx.Addr, new S2Descriptor(ctx.Old), ctx.Level));
            }

            return 0;
        }

        public int TablePre(ref S2VisitContext ctx) => 0;

        public int TablePost(ref S2VisitContext ctx) => 0;
    }

    /// <summary>
    /// Frees every table (kvm_pgtable_stage2_destroy). The object must not be used afterwards. The TLB entries of the
    /// VMID are invalidated.
    /// </summary>
    public void Destroy()
    {
        if (_destroyed)
        {
            return;
        }

        var visitor = new DestroyVisitor(this);
        Walk(0, _geometry.IpaSpace, ref visitor);
        _memory.FreePages(_rootPa, _geometry.ConcatenatedTables);
        _tablePages -= _geometry.ConcatenatedTables;
        Counters.TablesFreed += _geometry.ConcatenatedTables;
        _destroyed = true;
        InvalidateTlbVmid();
    }

    private readonly struct DestroyVisitor(Stage2PageTable t) : IS2Visitor
    {
        public S2WalkFlags Flags => S2WalkFlags.TablePost;

        public int Leaf(ref S2VisitContext ctx) => 0;

        public int TablePre(ref S2VisitContext ctx) => 0;

        public int TablePost(ref S2VisitContext ctx)
        {
            t.FreeTable(t.Follow(ctx.Old));
            ctx.Ptep = 0;
            return 0;
        }
    }
}
