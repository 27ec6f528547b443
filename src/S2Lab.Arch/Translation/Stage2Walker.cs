using System.Runtime.CompilerServices;

namespace S2Lab.Arch.Translation;

/// <summary>Which callbacks a walk makes (Linux KVM_PGTABLE_WALK_*).</summary>
[Flags]
public enum S2WalkFlags
{
    None = 0,

    /// <summary>Call <see cref="IS2Visitor.Leaf"/> for every non-table entry (invalid entries included).</summary>
    Leaf = 1 << 0,

    /// <summary>Call <see cref="IS2Visitor.TablePre"/> for a table entry before descending.</summary>
    TablePre = 1 << 1,

    /// <summary>Call <see cref="IS2Visitor.TablePost"/> for a table entry after its subtree.</summary>
    TablePost = 1 << 2,

    /// <summary>The walk runs for a fault: -EAGAIN from a callback stops it (otherwise -EAGAIN is ignored).</summary>
    HandleFault = 1 << 3,
}

/// <summary>
/// What a visitor sees for one entry (Linux <c>struct kvm_pgtable_visit_ctx</c>): a reference to the descriptor in table
/// memory, its value when visited, the walk range and the current address and level.
/// </summary>
public ref struct S2VisitContext
{
    /// <summary>The descriptor in table memory; writing it changes the table.</summary>
    public ref ulong Ptep;

    /// <summary>The descriptor's value when the visit started.</summary>
    public ulong Old;

    /// <summary>Start of the walked range (aligned down to the granule).</summary>
    public ulong Start;

    /// <summary>The address being visited (not aligned to the entry's size for the first entry of a range).</summary>
    public ulong Addr;

    /// <summary>End of the walked range (exclusive, granule aligned).</summary>
    public ulong End;

    public int Level;

    /// <summary>Physical address of the descriptor.</summary>
    public ulong DescriptorPa;

    public S2VisitContext(ref ulong ptep) => Ptep = ref ptep;
}

/// <summary>
/// A table-walk visitor. Implement it on a struct and pass it to <see cref="Stage2PageTable.Walk{TVisitor}"/>: the walk is
/// generic over the visitor type, so the callbacks are inlined, as Linux's walker callbacks are direct calls.
/// Callbacks return 0 or a negative errno.
/// </summary>
public interface IS2Visitor
{
    /// <summary>The callbacks wanted.</summary>
    S2WalkFlags Flags { get; }

    int Leaf(ref S2VisitContext ctx);

    int TablePre(ref S2VisitContext ctx);

    int TablePost(ref S2VisitContext ctx);
}

public sealed partial class Stage2PageTable
{
    private struct WalkState
    {
        public ulong Start;
        public ulong Addr;
        public ulong End;
    }

    /// <summary>
    /// Walks [<paramref name="ipa"/>, <paramref name="ipa"/> + <paramref name="size"/>) (widened to the granule), calling the
    /// visitor for each entry the range touches, in address order (Linux <c>kvm_pgtable_walk</c>). After a leaf or
    /// table-pre callback the entry is read again, so a callback that installs a table makes the walk descend into it.
    /// Returns 0 or the first error that stops the walk (-ERANGE outside the IPA space, -EINVAL after Destroy).
    /// A visitor that writes <see cref="S2VisitContext.Ptep"/> must write valid descriptors (a table descriptor must point
    /// at a table page of <see cref="Memory"/>); the built-in operations are the way to change tables safely.
    /// </summary>
    public int Walk<TVisitor>(ulong ipa, ulong size, ref TVisitor visitor)
        where TVisitor : struct, IS2Visitor
    {
        if (_destroyed)
        {
            return -(int)Stage2Errno.EINVAL;
        }

        ulong gmask = _geometry.TableBytes - 1;
        ulong start = ipa & ~gmask;
        ulong endUnaligned = ipa + size;
        if (endUnaligned < ipa || endUnaligned > _geometry.IpaSpace)
        {
            return -(int)Stage2Errno.ERANGE;
        }

        var state = new WalkState { Start = start, Addr = start, End = (endUnaligned + gmask) & ~gmask };
        if (state.End > _geometry.IpaSpace)
        {
            return -(int)Stage2Errno.ERANGE;
        }

        Span<ulong> root = _memory.PhysToVirt(_rootPa, _geometry.RootEntries);
        return WalkTable(ref state, ref visitor, root, _rootPa, _geometry.StartLevel);
    }

    private int WalkTable<TVisitor>(ref WalkState state, ref TVisitor visitor, Span<ulong> table, ulong tablePa, int level)
        where TVisitor : struct, IS2Visitor
    {
        int shift = _geometry.LevelShift(level);
        int idx = (int)((state.Addr >> shift) & (ulong)(table.Length - 1));
        for (; idx < table.Length; idx++)
        {
            if (state.Addr >= state.End)
            {
                break;
            }

            int ret = VisitEntry(ref state, ref visitor, ref table[idx], tablePa + ((ulong)idx << 3), level, shift);
            if (ret != 0)
            {
                return ret;
            }
        }

        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int VisitEntry<TVisitor>(ref WalkState state, ref TVisitor visitor, ref ulong pte, ulong ptePa, int level, int shift)
        where TVisitor : struct, IS2Visitor
    {
        S2WalkFlags flags = visitor.Flags;
        var ctx = new S2VisitContext(ref pte)
        {
            Old = pte,
            Start = state.Start,
            Addr = state.Addr,
            End = state.End,
            Level = level,
            DescriptorPa = ptePa,
        };
        bool table = level < 3 && (ctx.Old & 3) == 3;
        int ret = 0;
        bool reload = false;
        if (table && (flags & S2WalkFlags.TablePre) != 0)
        {
            ret = visitor.TablePre(ref ctx);
            reload = true;
        }

        if (!table && (flags & S2WalkFlags.Leaf) != 0)
        {
            ret = visitor.Leaf(ref ctx);
            reload = true;
        }

        if (reload)
        {
            ctx.Old = pte;
            table = level < 3 && (ctx.Old & 3) == 3;
        }

        if (!Continue(flags, ret))
        {
            return ret;
        }

        if (!table)
        {
            ulong size = 1UL << shift;
            state.Addr = (state.Addr & ~(size - 1)) + size;
            if (state.Addr == 0)
            {
                state.Addr = state.End; // wrapped at the top of a 64-bit space
            }

            return 0;
        }

        ulong childPa = new S2Descriptor(ctx.Old).Address(_geometry.Granule, _geometry.AddressFormat);
        ret = WalkTable(ref state, ref visitor, _memory.PhysToVirt(childPa, _geometry.EntriesPerTable), childPa, level + 1);
        if (!Continue(flags, ret))
        {
            return ret;
        }

        if ((flags & S2WalkFlags.TablePost) != 0)
        {
            ret = visitor.TablePost(ref ctx);
        }

        return Continue(flags, ret) ? 0 : ret;
    }

    /// <summary>Linux kvm_pgtable_walk_continue: -EAGAIN stops only a fault-handler walk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Continue(S2WalkFlags flags, int ret) =>
        ret == 0 || (ret == -(int)Stage2Errno.EAGAIN && (flags & S2WalkFlags.HandleFault) == 0);
}
