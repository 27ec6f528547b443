using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Issue 12's <c>vmas</c> backing as the kernel sees it: each piece of scenarios/memslot-vmas.yaml is the VMA it
/// declares (kind, cacheability by pgprot, VM_ALLOW_ANY_UNCACHED, pfns in or outside the linear map), the holes have
/// no VMA, and one memslot covers them all (rule 6 skips holes).
/// </summary>
public class VmasBackingTests
{
    private static readonly Lazy<RunResult> Run = new(() =>
        ScenarioRunner.RunOnce(ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, "memslot-vmas.yaml")), new DesignRef("linux-6.17"), RunVariant.Default));

    private static RegionAccessResult Step(string id) =>
        Run.Value.Steps.OfType<AccessResult>().Single(s => s.Label == id).Region;

    [Theory]
    // Rule 3: MT_NORMAL and MT_NORMAL_TAGGED are cacheable, MT_NORMAL_NC and MT_DEVICE_* are not.
    [InlineData("anon", "anon", true, false, false)]
    [InlineData("nc", "pfnmap", false, true, true)]
    [InlineData("kram", "pfnmap", false, false, false)]
    [InlineData("mixed", "mixedmap", true, false, true)]
    [InlineData("tagged", "pfnmap", true, false, true)]
    public void Rule3_6_each_piece_is_the_vma_it_declares(string step, string kind, bool cacheable, bool anyUncached, bool outsideLinearMap)
    {
        var r = Step(step);
        Assert.True(r.MemslotAccepted);
        Assert.Equal((kind, cacheable, anyUncached, outsideLinearMap),
            (r.Vma!.Kind, r.Vma.Cacheable, r.Vma.AllowAnyUncached, r.Vma.OutsideLinearMap));
    }

    [Fact]
    public void Rule6_a_hole_is_inside_the_memslot_but_has_no_vma_so_the_access_fails_EFAULT()
    {
        var r = Step("hole");
        Assert.True(r.MemslotAccepted);
        Assert.Null(r.Vma);
        Assert.Equal((AccessOutcome.Efault, Errno.EFAULT), (r.Accesses[0].Outcome, r.Accesses[0].Errno));
    }

    [Fact]
    public void A_migration_that_reaches_a_hole_names_the_holes_first_page_not_the_region_start()
    {
        // RAM over pieces and holes (rule 6 accepts it). Pre-copy reads the region a chunk at a time: mincore(2) of a
        // chunk with a hole fails with ENOMEM, and the error names the first page that has no mapping.
        const string text = """
            name: vmas-hole-migration
            hosts:
              a: { cpu: neoverse-v2, design: linux-6.17 }
              b: { cpu: neoverse-v2, design: linux-6.17 }
            vms:
              vm:
                host: a
                memory:
                  - name: holes
                    gpa: 0x40000000
                    size: 8MiB
                    backing: vmas
                    vmas:
                      - { offset: 0, size: 2MiB }
                      - { offset: 3MiB, size: 1MiB }
                      - { offset: 6MiB, size: 2MiB }
            steps:
              - start: vm
              - { id: go, migrate: { vm: vm, to: b } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "vmas-hole-migration.yaml"), new DesignRef("linux-6.17"), RunVariant.Default);
        var m = run.Steps.OfType<MigrateResult>().Single(s => s.Label == "go");
        Assert.NotEqual(MigrationVerdict.SucceededSameTypes, m.Outcome);
        Assert.Contains("holes+0x200000 (GPA 0x40200000, HVA 0x", m.Reason, StringComparison.Ordinal);
        Assert.Contains("the source VMM has no mapping there", m.Reason, StringComparison.Ordinal);
    }
}
