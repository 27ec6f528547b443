using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Tests;

public class ReplayParserTests
{
    private static (ReplayFile? File, ReplayError? Error) Parse(string text) => ReplayParser.Parse(new StringReader(text), "t.jsonl");

    private static ReplayError Fails(string text)
    {
        var (file, error) = Parse(text);
        Assert.Null(file);
        Assert.NotNull(error);
        return error!;
    }

    [Fact]
    public void Parses_every_operation_with_numbers_as_json_decimal_and_hex()
    {
        var (file, error) = Parse("""
            # a comment, then a blank line

            {"op":"create_vm"}
            {"op":"create_gmem","size":"0x10000","flags":1}
            {"op":"set","v":1,"slot":"7","flags":"0x3","gpa":4096,"size":"0x2000","uaddr":"0x7f0000000000"}
            {"op":"set","v":2,"slot":65537,"flags":4,"gpa":"18446744073709551615","size":0,"uaddr":0,"gmem":0,"gmem_offset":"0xFFFFFFFFFFFFF000","expect":"EINVAL"}
            """);
        Assert.Null(error);
        Assert.Equal(4, file!.Ops.Count);
        Assert.Equal(new CreateVmOp(3), file.Ops[0]);
        Assert.Equal(new CreateGmemOp(4, 0x10000, 1), file.Ops[1]);
        Assert.Equal(new SetRegionOp(5, 1, 7, 3, 4096, 0x2000, 0x7f00_0000_0000), file.Ops[2]);
        var v2 = Assert.IsType<SetRegionOp>(file.Ops[3]);
        Assert.Equal((2, 65537u, 4u, ulong.MaxValue, 0, 0xFFFF_FFFF_FFFF_F000UL), (v2.Version, v2.Slot, v2.Flags, v2.GuestPhysAddr, v2.Gmem, v2.GmemOffset));
        Assert.Equal(Errno.EINVAL, v2.Expected);
        Assert.True(file.HasExpectations);
    }

    [Fact]
    public void Absent_gmem_means_no_descriptor_and_flags_and_uaddr_default_to_0()
    {
        var (file, _) = Parse("""
            {"op":"create_vm"}
            {"op":"set","v":2,"slot":0,"gpa":0,"size":4096}
            """);
        var s = Assert.IsType<SetRegionOp>(file!.Ops[1]);
        Assert.Equal((-1, 0u, 0UL, 0UL), (s.Gmem, s.Flags, s.UserspaceAddr, s.GmemOffset));
    }

    [Theory]
    [InlineData("""{"op":"set","v":1,"slot":4294967296,"gpa":0,"size":0}""", "slot")] // 2^32: slot is 32-bit
    [InlineData("""{"op":"set","v":1,"slot":0,"flags":"0x100000000","gpa":0,"size":0}""", "flags")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":"18446744073709551616","size":0}""", "gpa")] // 2^64
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":18446744073709551616,"size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":-1,"size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":1.5,"size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":"0x","size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":"0x10000000000000000","size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":" 12","size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":"+12","size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":true,"size":0}""", "gpa")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":0}""", "size")]
    [InlineData("""{"op":"set","slot":0,"gpa":0,"size":0}""", "v")]
    [InlineData("""{"op":"set","v":3,"slot":0,"gpa":0,"size":0}""", "v")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":0,"size":0,"gmem":0}""", "gmem")] // v1 has no guest_memfd
    [InlineData("""{"op":"set","v":2,"slot":0,"gpa":0,"size":0,"gmem":0}""", "gmem")] // no create_gmem before
    [InlineData("""{"op":"set","v":2,"slot":0,"gpa":0,"size":0,"gmem":-2}""", "gmem")]
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":0,"size":0,"slots":1}""", "slots")] // unknown field
    [InlineData("""{"op":"set","v":1,"slot":0,"slot":1,"gpa":0,"size":0}""", "slot")] // duplicate
    [InlineData("""{"op":"set","v":1,"slot":0,"gpa":0,"size":0,"expect":"EWHAT"}""", "expect")]
    [InlineData("""{"op":"create_gmem","flags":0}""", "size")]
    [InlineData("""{"op":"delete"}""", "op")]
    [InlineData("""{"v":1}""", "op")]
    public void Malformed_line_names_the_file_line_and_field(string line, string field)
    {
        var e = Fails("{\"op\":\"create_vm\"}\n\n" + line);
        Assert.Equal(("t.jsonl", 3, field), (e.File, e.Line, e.Field));
        Assert.Contains($"t.jsonl:3: field '{field}'", e.ToString());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"op\":\"create_vm\"")]
    public void Lines_that_are_not_json_objects_are_errors(string line)
    {
        var e = Fails(line);
        Assert.Equal(1, e.Line);
        Assert.Null(e.Field);
    }

    [Fact]
    public void An_operation_before_any_create_vm_is_an_error()
    {
        var e = Fails("""{"op":"create_gmem","size":4096}""");
        Assert.Equal((1, "op"), (e.Line, e.Field));
    }

    [Fact]
    public void Nothing_is_returned_when_a_later_line_is_malformed()
    {
        var (file, error) = Parse("{\"op\":\"create_vm\"}\n{\"op\":\"set\",\"v\":1,\"slot\":0,\"gpa\":0,\"size\":4096}\n{\"op\":\"set\"}");
        Assert.Null(file);
        Assert.Equal(3, error!.Line);
    }

    [Fact]
    public void Writer_output_parses_back_to_the_same_operations()
    {
        var ops = new ReplayOp[]
        {
            new CreateVmOp(1),
            new CreateGmemOp(2, 0x10000, 3),
            new SetRegionOp(3, 1, 0x10005, 3, 0x1000, 0x2000, 0x7f00_0000_1000),
            new SetRegionOp(4, 2, 1, 4, 0xffff_ffff_ffff_f000, 0, 0, 0, ulong.MaxValue),
            new SetRegionOp(5, 2, 2, 4, 0, 4096, 0, -1, 0),
        };
        var text = string.Join("\n", ops.Select((o, i) => ReplayWriter.Format(o, i == 3 ? Errno.EEXIST : null)));
        var (file, error) = Parse(text);
        Assert.Null(error);
        Assert.Equal(ops[0], file!.Ops[0]);
        Assert.Equal(ops[1], file.Ops[1]);
        Assert.Equal(ops[2], file.Ops[2]);
        Assert.Equal(ops[3] with { Expected = Errno.EEXIST }, file.Ops[3]);
        Assert.Equal(ops[4], file.Ops[4]);
    }

    [Theory]
    [InlineData(Errno.None, "0")]
    [InlineData(Errno.EINVAL, "EINVAL")]
    [InlineData((Errno)75, "ERRNO_75")]
    public void Errno_text_round_trips(Errno e, string text)
    {
        Assert.Equal(text, ErrnoText.Format(e));
        Assert.True(ErrnoText.TryParse(text, out var back));
        Assert.Equal(e, back);
    }

    [Theory]
    [InlineData("")]
    [InlineData("None")]
    [InlineData("einval")]
    [InlineData("ERRNO_0")]
    [InlineData("22")]
    public void Errno_text_rejects_other_spellings(string text) => Assert.False(ErrnoText.TryParse(text, out _));

    [Fact]
    public void Parses_the_oracle_lines_with_their_recorded_answers()
    {
        var (file, error) = Parse("""
            {"op":"cap","fd":"sys","cap":243,"expect":"EINVAL"}
            {"op":"mmap","kind":"pfnmap_wc_any","uaddr":"0x2000000000","size":"0x2000","offset":"0x1000","expect":"0"}
            {"op":"munmap","uaddr":"0x2000000000","size":"0x1000"}
            {"op":"create_vm"}
            {"op":"cap","fd":"vm","cap":243,"expect":"0","value":0}
            {"op":"vcpu","slot":32000,"gpa":"0x8000000","uaddr":"0x1f00000000","expect":"0"}
            {"op":"access","kind":"exec","gpa":"0x10000000","expect":"0","exit":"abort","leaf":"none"}
            {"op":"access","kind":"write","gpa":"0x10001000","expect":"0","exit":"done","leaf":"L3:0x4ff"}
            {"op":"access","kind":"read","gpa":"0x10002000","expect":"EFAULT","leaf":"none"}
            """);
        Assert.Null(error);
        Assert.Equal(new CapOp(1, false, 243) { Expected = Errno.EINVAL }, file!.Ops[0]);
        Assert.Equal(new MmapOp(2, ReplayVmaKind.PfnmapWcAny, 0x20_0000_0000, 0x2000, 0x1000) { Expected = Errno.None }, file.Ops[1]);
        Assert.Equal(new MunmapOp(3, 0x20_0000_0000, 0x1000), file.Ops[2]);
        Assert.Equal(0L, file.Ops[4].ExpectedValue);
        Assert.Equal(new VcpuOp(6, 32000, 0x800_0000, 0x1F_0000_0000) { Expected = Errno.None }, file.Ops[5]);
        var exec = Assert.IsType<AccessOp>(file.Ops[6]);
        Assert.Equal((Arch.Translation.S2AccessKind.Execute, 0x1000_0000UL, "abort", "none"), (exec.Kind, exec.GuestPhysAddr, exec.ExpectedExit, exec.ExpectedLeaf));
        Assert.Equal("L3:0x4ff", file.Ops[7].ExpectedLeaf);
        Assert.Equal((Errno.EFAULT, (string?)null), (file.Ops[8].Expected!.Value, file.Ops[8].ExpectedExit));
    }

    [Fact]
    public void Oracle_lines_round_trip_through_the_writer()
    {
        var text = """
            {"op":"cap","fd":"vm","cap":243,"expect":"0","value":1}
            {"op":"mmap","kind":"mixedmap_io_wb","uaddr":"0x2000000000","size":"0x2000","offset":"0x1000","expect":"0"}
            {"op":"munmap","uaddr":"0x2000000000","size":"0x1000","expect":"0"}
            {"op":"vcpu","slot":"0x7d00","gpa":"0x8000000","uaddr":"0x1f00000000","expect":"0"}
            {"op":"access","kind":"read","gpa":"0x10000000","expect":"0","exit":"mmio","leaf":"none"}
            """;
        var (file, error) = Parse("{\"op\":\"create_vm\"}\n" + text);
        Assert.Null(error);
        var written = file!.Ops.Skip(1).Select(o => ReplayWriter.Format(o, o.Expected,
            new ReplayStep(o, o.Expected!.Value, o.ExpectedValue, o.ExpectedExit, o.ExpectedLeaf)));
        Assert.Equal(text.Split('\n').Select(l => l.Trim()), written);
    }

    [Theory]
    [InlineData("""{"op":"mmap","kind":"hugetlb","uaddr":0,"size":4096}""", "kind")]
    [InlineData("""{"op":"mmap","kind":"anon","size":4096}""", "uaddr")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"cap","fd":"kvm","cap":243}""", "fd")]
    [InlineData("""{"op":"cap","fd":"vm","cap":243}""", "op")]
    [InlineData("""{"op":"access","kind":"read","gpa":0}""", "op")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"access","kind":"fetch","gpa":0}""", "kind")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"access","kind":"read","gpa":0,"exit":"halt"}""", "exit")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"access","kind":"read","gpa":0,"leaf":"L4:0x1"}""", "leaf")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"cap","fd":"vm","cap":243,"value":"1"}""", "value")]
    [InlineData("""{"op":"create_vm"}""" + "\n" + """{"op":"vcpu","slot":1,"gpa":0,"uaddr":0,"exit":"done"}""", "exit")]
    public void Bad_oracle_lines_name_the_field(string text, string field) => Assert.Equal(field, Fails(text).Field);
}
