using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>A VMM changing a memslot's flags in place (KVM_MR_FLAGS_ONLY): dirty logging on or off.</summary>
public sealed record SetFlagsStep(int Index, string? Id, SourceMark At, string Vm, string Region, bool LogDirty)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "set-flags";
}

/// <summary>
/// <c>set-flags: {vm, region, logDirty}</c>: KVM_SET_USER_MEMORY_REGION(2) on the region's existing slot with
/// KVM_MEM_LOG_DIRTY_PAGES set or cleared. kvm_arch_prepare_memory_region() checks FLAGS_ONLY changes as it checks
/// creation: dirty logging on a VM_PFNMAP VMA is EINVAL (rule 6); a VM_MIXEDMAP VMA passes.
/// </summary>
internal sealed class SetFlagsStepKind : IStepKind
{
    public string Name => "set-flags";

    public StepSpec? Read(StepReader r)
    {
        var (b, path) = (r.B, r.Path);
        var f = b.Map(r.Body, path);
        if (f is null)
            return null;
        var rr = r.Scenario.ReadRegionRef(f, path);
        var log = b.Bool(f.Req("logDirty"), $"{path}.logDirty");
        f.Done();
        return rr is { } x && log is { } l ? new SetFlagsStep(r.Index, r.Id, r.Body.Start, x.Item1.Name, x.Item2.Name, l) : null;
    }

    public bool Check(StepSpec step, StepReader r) => true;

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (SetFlagsStep)step;
        var st = run.Vms[s.Vm];
        if (st.Vm is null)
            return new RangeResult(s.Index, s.Label, Name, s.Vm, s.Region, Errno.None, $"the VM is not running ({st.NotRunningReason}): nothing done");
        var e = st.Vm.SetDirtyLogging(s.Region, s.LogDirty);
        return new RangeResult(s.Index, s.Label, Name, s.Vm, s.Region, e, s.LogDirty ? "KVM_MEM_LOG_DIRTY_PAGES on" : "KVM_MEM_LOG_DIRTY_PAGES off");
    }

    public IReadOnlyList<ExpectField> Expect { get; } =
    [
        new("result", null, (r, _) => LabText.Errno(((RangeResult)r).Errno), ExpectField.ErrnoProblem, ExpectField.ErrnoMatches),
    ];
}
