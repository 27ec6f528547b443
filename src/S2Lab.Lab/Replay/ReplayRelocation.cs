using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Replay;

/// <summary>
/// Moves a replay file's host addresses into a window the replaying process reserved, so that the kernel backend can
/// map at them (MAP_FIXED) without replacing its own mappings. Every uaddr moves by one offset: the lines keep their
/// relative layout, and the offset is a multiple of <see cref="Alignment"/>, so an address keeps its alignment to
/// 4 KiB, 2 MiB and 1 GiB (a THP- or block-mapping-sized memslot stays one; an unaligned uaddr stays unaligned and
/// the kernel answers it as it would have).
/// </summary>
public static class ReplayRelocation
{
    /// <summary>The offset's alignment: the largest block size (1 GiB, a level-1 block on arm64, a PUD on x86_64).</summary>
    public const ulong Alignment = 1UL << 30;

    /// <summary>The largest span of host addresses a file may use (the window this much plus <see cref="Alignment"/>).</summary>
    public const ulong MaxSpan = 64UL << 30;

    /// <summary>
    /// The host address range the file maps or unmaps: the lowest uaddr and the highest uaddr + size over mmap, munmap
    /// and vcpu (one page) lines. An error names the line whose range wraps past 2^64 or makes the span larger than
    /// <see cref="MaxSpan"/>. (0, 0) when no line maps or unmaps. set lines do not count: a memslot's uaddr may be any
    /// number (golden files probe the kernel's checks with 0, 2^47 or 2^64 - 4096), and names host memory only where it
    /// meets what the file maps.
    /// </summary>
    public static (ulong Low, ulong High, string? Error) Extent(IReadOnlyList<ReplayOp> ops)
    {
        ulong low = ulong.MaxValue, high = 0;
        foreach (var op in ops)
        {
            if (op is SetRegionOp || Range(op) is not var (uaddr, size))
                continue;
            if (size > ulong.MaxValue - uaddr)
                return (0, 0, $"line {op.Line}: uaddr 0x{uaddr:x} + size 0x{size:x} wraps past the end of the address space, so it cannot be moved into the replay window");
            low = Math.Min(low, uaddr);
            high = Math.Max(high, uaddr + size);
            if (high - low > MaxSpan)
                return (0, 0, $"line {op.Line}: the file's host addresses span 0x{low:x}-0x{high:x}, more than the replay window's 0x{MaxSpan:x} bytes");
        }
        return low == ulong.MaxValue ? (0, 0, null) : (low, high, null);
    }

    /// <summary>The window size a file needs: its span, rounded up to pages, plus <see cref="Alignment"/> for the offset.</summary>
    public static ulong WindowSize(ulong low, ulong high) => (high - low + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE + Alignment;

    /// <summary>
    /// The ops with every uaddr moved into [<paramref name="windowStart"/>, <paramref name="windowStart"/> +
    /// <paramref name="windowSize"/>) by one offset that is a multiple of <see cref="Alignment"/>; other fields are
    /// unchanged, and the list keeps its order. A set line moves when its range meets the range the file maps
    /// (<see cref="Extent"/>); one wholly outside it stays as written, since the kernel answers it by the number alone
    /// (alignment, access_ok, overlap with other memslots) — unless the file runs a vCPU, whose guest would then reach
    /// s2lab's own memory through it. An error names the line that cannot be moved: a range that wraps, one that would
    /// end past the window's end, or such a memslot.
    /// </summary>
    public static (IReadOnlyList<ReplayOp>? Ops, string? Error) Relocate(IReadOnlyList<ReplayOp> ops, ulong windowStart, ulong windowSize)
    {
        var (low, high, error) = Extent(ops);
        if (error is not null)
            return (null, error);
        if (windowSize > ulong.MaxValue - windowStart)
            return (null, $"the replay window 0x{windowStart:x} + 0x{windowSize:x} wraps past the end of the address space");
        var end = windowStart + windowSize;
        // The first Alignment boundary at or above the window's start, plus the file's own offset within 1 GiB.
        var alignedStart = (windowStart + Alignment - 1) & ~(Alignment - 1);
        if (alignedStart < windowStart || alignedStart > end)
            return (null, $"the replay window 0x{windowStart:x}-0x{end:x} holds no 1 GiB boundary");
        var target = alignedStart + (low & (Alignment - 1));
        var runsGuest = ops.Any(o => o is VcpuOp);
        var moved = new List<ReplayOp>(ops.Count);
        foreach (var op in ops)
        {
            if (Range(op) is not var (uaddr, size))
            {
                moved.Add(op);
                continue;
            }
            if (op is SetRegionOp && !Meets(uaddr, size, low, high))
            {
                // A wrapping range is refused by access_ok() whatever it names; a deletion (size 0) maps nothing.
                if (runsGuest && size > 0 && size <= ulong.MaxValue - uaddr)
                    return (null, $"line {op.Line}: memslot uaddr 0x{uaddr:x} + size 0x{size:x} lies outside every range the file maps, and the file runs a vCPU, which would reach s2lab's own memory through it");
                moved.Add(op);
                continue;
            }
            var at = uaddr - low + target;
            if (at < target || at > end || size > end - at)
                return (null, $"line {op.Line}: uaddr 0x{uaddr:x} + size 0x{size:x} would not lie inside the replay window (0x{windowStart:x}-0x{end:x}, 0x{windowSize:x} bytes)");
            moved.Add(op switch
            {
                MmapOp m => m with { UserspaceAddr = at },
                MunmapOp u => u with { UserspaceAddr = at },
                VcpuOp v => v with { UserspaceAddr = at },
                SetRegionOp s => s with { UserspaceAddr = at },
                _ => op,
            });
        }
        return (moved, null);
    }

    /// <summary>Whether [uaddr, uaddr + size) (a point where size is 0; to 2^64 where it wraps) meets [low, high).</summary>
    private static bool Meets(ulong uaddr, ulong size, ulong low, ulong high) =>
        low < high && uaddr < high && (size > ulong.MaxValue - uaddr || Math.Max(uaddr + size, uaddr + 1) > low);

    /// <summary>The host range a line names, or null for a line with no uaddr.</summary>
    private static (ulong Uaddr, ulong Size)? Range(ReplayOp op) => op switch
    {
        MmapOp m => (m.UserspaceAddr, m.Size),
        MunmapOp u => (u.UserspaceAddr, u.Size),
        VcpuOp v => (v.UserspaceAddr, PAGE_SIZE),
        SetRegionOp s => (s.UserspaceAddr, s.MemorySize),
        _ => null,
    };
}
