using S2Lab.Kernel.Mm;
using S2Lab.Lab.Scenarios;
using S2Lab.Lab.Scenarios.Kinds;

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
    public void LogDirty_on_a_region_is_a_bool_and_reaches_the_region()
    {
        // Rule 6 at creation: the VMM asks for KVM_MEM_LOG_DIRTY_PAGES when it creates the memslot.
        var err = OnlyError(Head.Edit("size: 64MiB }", "size: 64MiB, logDirty: later }"));
        Assert.Equal(("gaps.yaml", 5, "vms.vm.memory[0].logDirty"), (err.File, err.At.Line, err.Field));
        var s = ScenarioLoader.Parse(Head.Edit("size: 64MiB }", "size: 64MiB, logDirty: true }"), "gaps.yaml");
        Assert.True(s.Vms[0].Regions[0].LogDirty);
        Assert.False(ScenarioLoader.Parse(Head, "gaps.yaml").Vms[0].Regions[0].LogDirty);
    }

    [Fact]
    public void LogDirty_on_a_device_region_is_a_bool()
    {
        var dev = """
            name: gaps
            hosts:
              grace:
                cpu: neoverse-v2
                design: linux-6.17
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 1GiB } }
            vms:
              vm: { host: grace, devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000, logDirty: 2 } } } ] }
            steps:
              - start: vm

            """;
        var err = OnlyError(dev);
        Assert.Equal(("gaps.yaml", 8, "vms.vm.devices[0].regions.usemem.logDirty"), (err.File, err.At.Line, err.Field));
        var s = ScenarioLoader.Parse(dev.Edit("logDirty: 2", "logDirty: true"), "gaps.yaml");
        Assert.True(s.Vms[0].Region("gpu0.usemem")!.LogDirty);
    }

    // Issue 12: the VMM maps a driver's VMA over part of a running VM's region (MTE's fault-time EFAULT).
    private const string Remap = "  - remap: { vm: vm, region: ram, offset: 2MiB, size: 2MiB, map: pfnmap, pgprot: MT_NORMAL, pfns: ram }\n";

    [Fact]
    public void A_remap_step_loads_its_driver_vma()
    {
        var s = ScenarioLoader.Parse(Head + Remap, "gaps.yaml");
        var step = Assert.IsType<RemapStep>(s.Steps[1]);
        Assert.Equal(("vm", "ram"), (step.Vm, step.Region));
        Assert.Equal(new VmaPieceSpec(2UL << 20, 2UL << 20, VmaMapKind.Pfnmap, MtIndex.MT_NORMAL, false, VmaPfns.Ram), step.Piece);
    }

    [Theory]
    [InlineData("map: pfnmap", "map: anon", "steps[1].remap.map", "pfnmap or mixedmap")]
    [InlineData("map: pfnmap", "map: vm_io", "steps[1].remap.map", "is not one of")]
    [InlineData(", pgprot: MT_NORMAL", "", "steps[1].remap.pgprot", "missing required field")]
    [InlineData("pfns: ram", "pfns: io", "steps[1].remap.pfns", "is not one of")]
    [InlineData("size: 2MiB", "size: 64MiB", "steps[1].remap.size", "whole pages inside region 'ram'")]
    [InlineData("pfns: ram", "pfns: ram, prot: rw", "steps[1].remap.prot", "unknown field")]
    public void A_bad_remap_step_is_one_error_with_its_field(string old, string replacement, string field, string message)
    {
        var err = OnlyError(Head + Remap.Edit(old, replacement));
        Assert.Equal(("gaps.yaml", 8, field), (err.File, err.At.Line, err.Field));
        Assert.Contains(message, err.Message, StringComparison.Ordinal);
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

    // Issue 12: a memslot over several VMAs with holes (backing `vmas`), each VMA anonymous or a driver's.
    private static string Vmas(string pieces) => Head.Edit("size: 64MiB }", $"size: 64MiB, backing: vmas, vmas: [ {pieces} ] }}");

    [Fact]
    public void Vmas_pieces_with_holes_and_arbitrary_driver_vmas_load()
    {
        var s = ScenarioLoader.Parse(Vmas("{ offset: 0, size: 2MiB }, { offset: 4MiB, size: 2MiB, map: pfnmap, pgprot: MT_NORMAL_TAGGED, " +
                                          "allowAnyUncached: true, pfns: ram }, { offset: 8MiB, size: 4KiB, map: mixedmap, pgprot: mt_device_ngnre }"), "gaps.yaml");
        var spec = Assert.IsType<VmasBackingSpec>(s.Vms[0].Regions[0].BackingSpec);
        VmaPieceSpec[] expected =
        [
            new(0, 2UL << 20, VmaMapKind.Anon, MtIndex.MT_NORMAL, false, VmaPfns.Device),
            new(4UL << 20, 2UL << 20, VmaMapKind.Pfnmap, MtIndex.MT_NORMAL_TAGGED, true, VmaPfns.Ram),
            new(8UL << 20, 4096, VmaMapKind.Mixedmap, MtIndex.MT_DEVICE_nGnRE, false, VmaPfns.Device),
        ];
        Assert.Equal(expected, spec.Pieces);
    }

    [Theory]
    [InlineData("{ offset: 0, size: 4MiB }, { offset: 2MiB, size: 2MiB }", "vms.vm.memory[0].vmas[1].offset", "without overlap")]
    [InlineData("{ offset: 4MiB, size: 2MiB }, { offset: 0, size: 2MiB }", "vms.vm.memory[0].vmas[1].offset", "address order")]
    [InlineData("{ offset: 62MiB, size: 4MiB }", "vms.vm.memory[0].vmas[0].size", "ends beyond the region")]
    [InlineData("{ offset: 64MiB, size: 4KiB }", "vms.vm.memory[0].vmas[0].size", "ends beyond the region")]
    [InlineData("{ offset: 0x800, size: 4KiB }", "vms.vm.memory[0].vmas[0].offset", "page boundary")]
    [InlineData("{ offset: 0, size: 6000 }", "vms.vm.memory[0].vmas[0].size", "multiple of the page size")]
    [InlineData("{ offset: 0, size: 0 }", "vms.vm.memory[0].vmas[0].size", "non-zero")]
    [InlineData("{ size: 4KiB }", "vms.vm.memory[0].vmas[0].offset", "missing required field")]
    [InlineData("{ offset: 0, size: 4KiB, pgprot: MT_NORMAL_NC }", "vms.vm.memory[0].vmas[0].pgprot", "needs map: pfnmap or mixedmap")]
    [InlineData("{ offset: 0, size: 4KiB, allowAnyUncached: true }", "vms.vm.memory[0].vmas[0].allowAnyUncached", "needs map: pfnmap or mixedmap")]
    [InlineData("{ offset: 0, size: 4KiB, pfns: ram }", "vms.vm.memory[0].vmas[0].pfns", "needs map: pfnmap or mixedmap")]
    [InlineData("{ offset: 0, size: 4KiB, map: pfnmap }", "vms.vm.memory[0].vmas[0].pgprot", "needs its pgprot")]
    [InlineData("{ offset: 0, size: 4KiB, map: mixedmap, pgprot: MT_WRITEBACK }", "vms.vm.memory[0].vmas[0].pgprot", "is not one of")]
    [InlineData("{ offset: 0, size: 4KiB, map: pfnmap, pgprot: MT_NORMAL, pfns: io }", "vms.vm.memory[0].vmas[0].pfns", "is not one of")]
    [InlineData("{ offset: 0, size: 4KiB, map: vm_io }", "vms.vm.memory[0].vmas[0].map", "is not one of")]
    [InlineData("{ offset: 0, size: 4KiB, flags: VM_IO }", "vms.vm.memory[0].vmas[0].flags", "unknown field")]
    public void A_bad_vmas_piece_is_one_error_with_its_field(string pieces, string field, string message)
    {
        var err = OnlyError(Vmas(pieces));
        Assert.Equal(("gaps.yaml", 5, field), (err.File, err.At.Line, err.Field));
        Assert.Contains(message, err.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vmas_region_needs_its_list_and_vmas_is_unknown_elsewhere()
    {
        var missing = OnlyError(Head.Edit("size: 64MiB }", "size: 64MiB, backing: vmas }"));
        Assert.Equal(("vms.vm.memory[0].vmas", 5), (missing.Field, missing.At.Line));
        Assert.Contains("missing required field", missing.Message, StringComparison.Ordinal);
        var empty = OnlyError(Vmas(""));
        Assert.Equal("vms.vm.memory[0].vmas", empty.Field);
        Assert.Contains("at least one VMA", empty.Message, StringComparison.Ordinal);
        var elsewhere = OnlyError(Head.Edit("size: 64MiB }", "size: 64MiB, vmas: [ { offset: 0, size: 4KiB } ] }"));
        Assert.Equal("vms.vm.memory[0].vmas", elsewhere.Field);
        Assert.Contains("unknown field", elsewhere.Message, StringComparison.Ordinal);
    }
}
