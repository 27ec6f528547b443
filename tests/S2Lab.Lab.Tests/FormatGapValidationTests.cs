using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Issue 12's scenario fields reject bad input with file, line and field, like every other field.</summary>
public class FormatGapValidationTests
{
    private const string Head = """
        name: gaps
        hosts:
          grace: { cpu: neoverse-v2, design: linux-6.17 }
        vms:
          vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 64MiB } ] }
        steps:
          - start: vm

        """;

    private static ScenarioError OnlyError(string text)
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, "gaps.yaml"));
        return Assert.Single(e.Errors);
    }

    [Fact]
    public void An_access_gpa_inside_a_region_names_the_region()
    {
        var err = OnlyError(Head + "  - access: { vm: vm, gpa: 0x40001000, mair: 0xFF, type: read }\n");
        Assert.Equal(("gaps.yaml", 8, "steps[1].access.gpa"), (err.File, err.At.Line, err.Field));
        Assert.Contains("inside region 'ram'", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_access_with_both_gpa_and_region_is_one_error()
    {
        var err = OnlyError(Head + "  - access: { vm: vm, gpa: 0x1000, region: ram, mair: 0xFF, type: read }\n");
        Assert.Equal(("steps[1].access.gpa", 8), (err.Field, err.At.Line));
        Assert.Contains("not both", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unaligned_access_gpa_is_an_error()
    {
        var err = OnlyError(Head + "  - access: { vm: vm, gpa: 0x1004, mair: 0xFF, type: read }\n");
        Assert.Equal("steps[1].access.gpa", err.Field);
        Assert.Contains("8-byte aligned", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_huge_page_size_that_is_not_a_power_of_two_is_an_error_but_any_power_of_two_loads()
    {
        var bad = Head.Edit("size: 64MiB }", "size: 64MiB, backing: hugetlb, hugePageSize: 3MiB }");
        var err = OnlyError(bad);
        Assert.Equal(("vms.vm.memory[0].hugePageSize", 5), (err.Field, err.At.Line));
        // 16 MiB is a power of two the host has no pool for: the file loads, the mmap fails when it runs.
        var odd = Head.Edit("size: 64MiB }", "size: 64MiB, backing: hugetlb, hugePageSize: 16MiB }");
        var s = ScenarioLoader.Parse(odd, "gaps.yaml");
        Assert.Equal(16UL << 20, Assert.IsType<Scenarios.Kinds.HugetlbBackingSpec>(s.Vms[0].Regions[0].BackingSpec).PageSize);
    }

    [Fact]
    public void HugePageSize_on_anonymous_memory_is_an_unknown_field()
    {
        var err = OnlyError(Head.Edit("size: 64MiB }", "size: 64MiB, hugePageSize: 2MiB }"));
        Assert.Equal("vms.vm.memory[0].hugePageSize", err.Field);
        Assert.Contains("unknown field", err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Set_flags_needs_log_dirty_as_a_bool()
    {
        var err = OnlyError(Head + "  - set-flags: { vm: vm, region: ram, logDirty: yes-please }\n");
        Assert.Equal(("steps[1].set-flags.logDirty", 8), (err.Field, err.At.Line));
    }

    [Fact]
    public void Mte_is_a_bool_and_stage2_level_a_level()
    {
        var err = OnlyError(Head.Edit("{ host: grace,", "{ host: grace, mte: sometimes,"));
        Assert.Equal(("vms.vm.mte", 5), (err.Field, err.At.Line));
        var lvl = OnlyError(Head + "  - { id: a, access: { vm: vm, region: ram, mair: 0xFF, type: read } }\n" +
                            "  - expect: { step: a, stage2.level: 4 }\n");
        Assert.Equal(("steps[2].expect.stage2.level", 9), (lvl.Field, lvl.At.Line));
    }
}
