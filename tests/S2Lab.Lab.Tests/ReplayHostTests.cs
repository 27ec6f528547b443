using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Replay lines that need a host run through the seams (issue 11 step 9): the address space, the guest loader and the
/// special mappings. On the model, what an access shows besides KVM_RUN's return (an injected abort, the leaf) comes
/// from the kernel events.
/// </summary>
public class ReplayHostTests
{
    private static IReadOnlyList<ReplayOp> Parse(string text) => ReplayParser.Parse(new StringReader(text), "t").File!.Ops;

    private const string Lines = """
        {"op":"create_vm"}
        {"op":"access","kind":"read","gpa":"0x10000000"}
        {"op":"enable_cap","cap":205}
        {"op":"vcpu","slot":32000,"gpa":"0x8000000","uaddr":"0x1f00000000"}
        {"op":"mmap","kind":"anon","uaddr":"0x2000000000","size":"0x2000"}
        {"op":"mmap","kind":"pfnmap_nc","uaddr":"0x2000002000","size":"0x1000"}
        {"op":"set","v":1,"slot":1,"gpa":"0x10000000","size":"0x3000","uaddr":"0x2000000000"}
        {"op":"access","kind":"write","gpa":"0x10000008"}
        {"op":"access","kind":"read","gpa":"0x10004000"}
        {"op":"access","kind":"exec","gpa":"0x10002000"}
        {"op":"munmap","uaddr":"0x2000000000","size":"0x1000"}
        {"op":"access","kind":"read","gpa":"0x10000000"}
        """;

    [Fact]
    public void Without_a_host_the_lines_that_need_one_are_ENOSYS()
    {
        using var kvm = ModelBackend.TryCreate(KvmProfile.Arm64, ModelBackend.DefaultDesign, out _)!;
        var steps = ReplayRunner.Run(kvm, Parse(Lines));
        Assert.Equal(Errno.None, steps[0].Result);
        Assert.All(steps.Where(s => s.Op is not (CreateVmOp or SetRegionOp)), s => Assert.Equal((Errno.ENOSYS, null, null), (s.Result, s.Exit, s.Leaf)));
    }

    [Fact]
    public void On_the_model_each_access_answers_with_its_exit_and_the_leaf_the_events_show()
    {
        var model = ModelBackend.TryCreateWithHost(KvmProfile.Arm64, ModelBackend.DefaultDesign, out var error)
            ?? throw new InvalidOperationException(error);
        IReadOnlyList<ReplayStep> steps;
        using (model.Kvm)
            steps = ReplayRunner.Run(model.Kvm, Parse(Lines), model.Host);
        var shown = steps.Select(s => (s.Result, s.Exit, s.Leaf)).ToList();
        Assert.Equal((Errno.EBADF, null, null), shown[1]); // no vCPU yet
        Assert.Equal(Errno.EINVAL, shown[2].Result); // KVM_CAP_ARM_MTE on a CPU without MTE
        Assert.All(shown.Skip(3).Take(4), s => Assert.Equal(Errno.None, s.Result));
        // Anonymous memory on neoverse-v2 (FWB and DIC): Normal (MT_S2_FWB_NORMAL in MemAttr[5:2]), RW, ISH, AF, and
        // executable up front (rules 11, 13).
        Assert.Equal((Errno.None, "done", "L3:0x7d8"), shown[7]);
        // Outside every memslot: an MMIO exit, no leaf.
        Assert.Equal((Errno.None, "mmio", "none"), shown[8]);
        // A fetch from Device memory (a non-cacheable VM_PFNMAP): KVM injects an instruction abort, KVM_RUN returns
        // normally and nothing is mapped (rule 12).
        Assert.Equal((Errno.None, "abort", "none"), shown[9]);
        // The VMM unmapped the page: the MMU notifier removed the leaf, and the fault finds no VMA (EFAULT).
        Assert.Equal((Errno.EFAULT, null, "none"), shown[11]);
    }
}
