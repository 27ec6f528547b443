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
        ScenarioRunner.RunOnce(ScenarioLoader.LoadFile(Path.Combine(Repo.Scenarios, "memslot-vmas.yaml")), "linux-6.17", RunVariant.Default));

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
}
