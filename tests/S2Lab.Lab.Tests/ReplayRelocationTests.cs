using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Tests;

/// <summary>
/// <see cref="ReplayRelocation"/>: the kernel backend moves a file's host addresses into a window by one offset that
/// keeps 1 GiB alignment, and refuses, naming the line, what it cannot move.
/// </summary>
public class ReplayRelocationTests
{
    private const ulong GiB = 1UL << 30;
    private const ulong Window = 0x7f12_3456_7000;

    private static IReadOnlyList<ReplayOp> Parse(string text)
    {
        var (file, error) = ReplayParser.Parse(new StringReader(text), "relocation");
        Assert.True(error is null, error?.ToString());
        return file!.Ops;
    }

    [Fact]
    public void Every_uaddr_moves_by_one_offset_that_keeps_1GiB_alignment()
    {
        var ops = Parse("""
            {"op":"create_vm"}
            {"op":"vcpu","slot":100,"gpa":"0xf000","uaddr":"0x10000000000"}
            {"op":"mmap","kind":"anon","uaddr":"0x10040000000","size":"0x40000000"}
            {"op":"set","v":1,"slot":1,"gpa":"0x40000000","size":"0x40000000","uaddr":"0x10040000000"}
            {"op":"set","v":1,"slot":2,"gpa":"0x80000000","size":"0x1000","uaddr":"0x10000200800"}
            {"op":"munmap","uaddr":"0x10040200000","size":"0x200000"}
            {"op":"access","kind":"read","gpa":"0x40000000"}
            """);
        var (low, high, error) = ReplayRelocation.Extent(ops);
        Assert.Null(error);
        Assert.Equal((0x100_0000_0000UL, 0x100_8000_0000UL), (low, high));
        var size = ReplayRelocation.WindowSize(low, high);
        var (moved, why) = ReplayRelocation.Relocate(ops, Window, size);
        Assert.Null(why);
        ulong U(ReplayOp o) => o switch
        {
            MmapOp m => m.UserspaceAddr,
            MunmapOp u => u.UserspaceAddr,
            VcpuOp v => v.UserspaceAddr,
            SetRegionOp s => s.UserspaceAddr,
            _ => 0,
        };
        var offsets = ops.Zip(moved!).Where(p => p.First is not (CreateVmOp or AccessOp)).Select(p => U(p.Second) - U(p.First)).Distinct().ToList();
        var offset = Assert.Single(offsets);
        Assert.Equal(0UL, offset % GiB);
        Assert.All(moved!.Where(o => o is not (CreateVmOp or AccessOp)), o => Assert.InRange(U(o), Window, Window + size - 1));
        // Alignments are kept: the 1 GiB block stays 1 GiB aligned, the unaligned uaddr stays unaligned (EINVAL on set).
        Assert.Equal(0UL, U(moved![2]) % GiB);
        Assert.Equal(0x800UL, U(moved[4]) % 0x1000);
        // Only the uaddr changed.
        Assert.Equal(ops[3] with { }, ((SetRegionOp)moved[3]) with { UserspaceAddr = ((SetRegionOp)ops[3]).UserspaceAddr });
        Assert.Same(ops[6], moved[6]);
    }

    [Theory]
    [InlineData("""{"op":"mmap","kind":"anon","uaddr":"0xfffffffffffff000","size":"0x2000"}""", "wraps")]
    [InlineData("""{"op":"vcpu","slot":1,"gpa":"0xf000","uaddr":"0xfffffffffffff800"}""", "wraps")]
    [InlineData("""{"op":"munmap","uaddr":"0x7fff00000000","size":"0x1000"}""", "span")]
    public void Addresses_that_wrap_or_span_too_far_are_refused_naming_the_line(string hostile, string word)
    {
        var ops = Parse("""{"op":"create_vm"}""" + "\n" + """{"op":"mmap","kind":"anon","uaddr":"0x1000","size":"0x1000"}""" + "\n" + hostile);
        var (_, _, error) = ReplayRelocation.Extent(ops);
        Assert.NotNull(error);
        Assert.StartsWith("line 3:", error);
        Assert.Contains(word, error);
        var (moved, why) = ReplayRelocation.Relocate(ops, Window, ReplayRelocation.WindowSize(0, ReplayRelocation.MaxSpan));
        Assert.Null(moved);
        Assert.Equal(error, why);
    }

    [Fact]
    public void A_range_past_the_window_end_is_refused_naming_the_line()
    {
        var ops = Parse("""
            {"op":"mmap","kind":"anon","uaddr":"0x40000000","size":"0x1000"}
            {"op":"mmap","kind":"anon","uaddr":"0x40001000","size":"0x10000"}
            """);
        // A window whose 1 GiB boundary leaves room for the first line only.
        var start = 3 * GiB - 0x2000;
        var (moved, why) = ReplayRelocation.Relocate(ops, start, 0x2000 + 0x8000);
        Assert.Null(moved);
        Assert.StartsWith("line 2:", why);
        Assert.Contains("inside the replay window", why);
        // A window with no 1 GiB boundary in it cannot keep the alignment.
        (moved, why) = ReplayRelocation.Relocate(ops, GiB + 0x1000, 0x100000);
        Assert.Null(moved);
        Assert.Contains("1 GiB boundary", why);
        // A window that wraps is refused.
        (moved, why) = ReplayRelocation.Relocate(ops, ulong.MaxValue - 0xfff, 0x2000);
        Assert.Null(moved);
        Assert.Contains("wraps", why);
    }

    [Fact]
    public void A_memslot_outside_the_mapped_range_keeps_its_number_unless_a_vcpu_could_reach_it()
    {
        // Golden files probe the kernel's uaddr checks with numbers (0, 2^47, 2^64 - 4096, a wrapping range): these
        // name no memory the file maps, and move nowhere.
        const string lines = """
            {"op":"create_vm"}
            {"op":"mmap","kind":"anon","uaddr":"0x7f0000000000","size":"0x1000"}
            {"op":"set","v":1,"slot":1,"gpa":"0","size":"0x1000","uaddr":"0x0"}
            {"op":"set","v":1,"slot":2,"gpa":"0x1000","size":"0x1000","uaddr":"0x800000000000"}
            {"op":"set","v":1,"slot":3,"gpa":"0x2000","size":"0x2000","uaddr":"0xfffffffffffff000"}
            {"op":"set","v":1,"slot":4,"gpa":"0x4000","size":"0x1000","uaddr":"0x7f0000000000"}
            """;
        var ops = Parse(lines);
        var (moved, why) = ReplayRelocation.Relocate(ops, Window, ReplayRelocation.WindowSize(0x7f00_0000_0000, 0x7f00_0000_1000));
        Assert.Null(why);
        Assert.NotNull(moved);
        Assert.Equal(ops.Take(5).Skip(2), moved.Take(5).Skip(2));
        Assert.NotEqual(ops[5], moved[5]);
        Assert.Equal(((MmapOp)moved[1]).UserspaceAddr, ((SetRegionOp)moved[5]).UserspaceAddr);
        // With a vCPU the guest could reach s2lab's own memory through slot 1: refused, naming the line.
        (moved, why) = ReplayRelocation.Relocate(Parse(lines + "\n" + """{"op":"vcpu","slot":9,"gpa":"0xf000","uaddr":"0x7f0000000000"}"""),
            Window, ReplayRelocation.WindowSize(0x7f00_0000_0000, 0x7f00_0000_1000));
        Assert.Null(moved);
        Assert.StartsWith("line 3:", why);
    }
}
