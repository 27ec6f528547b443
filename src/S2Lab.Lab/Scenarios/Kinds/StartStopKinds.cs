using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary><c>start: VM</c> or <c>{vm, host}</c>: the VMM creates the VM (stopping it first if it runs).</summary>
internal sealed class StartStepKind : IStepKind
{
    public string Name => "start";

    public StepSpec? Read(StepReader r)
    {
        var (b, sc, body, path) = (r.B, r.Scenario, r.Body, r.Path);
        if (body is ScalarNode)
            return sc.ResolveVm(body, path) is { } v ? new StartStep(r.Index, r.Id, body.Start, v.Name, v.Host) : null;
        var f = b.Map(body, path);
        if (f is null)
            return null;
        var vm = sc.ResolveVm(f.Req("vm"), $"{path}.vm");
        var hostNode = f.Opt("host");
        var host = hostNode is null ? null : sc.ResolveHost(hostNode, $"{path}.host");
        f.Done();
        if (vm is null || (hostNode is not null && host is null))
            return null;
        return new StartStep(r.Index, r.Id, body.Start, vm.Name, host?.Name ?? vm.Host);
    }

    public bool Check(StepSpec step, StepReader r)
    {
        var s = (StartStep)step;
        if (r.Has("host"))
            r.Scenario.CheckDevicesOn(r.Scenario.Vm(s.Vm), r.Scenario.Host(s.Host), r.At("host"), $"{r.Path}.host");
        return true;
    }

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (StartStep)step;
        var st = run.Vms[s.Vm];
        st.Destroy();
        st.Runs++;
        var host = run.Hosts[s.Host];
        var vmm = host.NewVmm(s.Vm);
        // Capability 243 asked on the system fd, as a VMM probing before KVM_CREATE_VM would.
        var sysCap = vmm.Kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        var report = Vmm.Vmm.Start(vmm, run.ConfigOf(st.Spec), run.PolicyFor(st.Spec, host, null));
        if (report.Vm is { } vm)
            st.Attach(vm, host);
        else
            st.StartFailed(host, report.Outcome == StartOutcome.Refused ? $"the VMM refused to start it on {host.Name}: {report.Reason}" : $"it failed to start on {host.Name}: {report.Reason}");
        return new StartResult(s.Index, s.Label, s.Vm, s.Host, report.Outcome, report.Reason, report.Errno, report.Cap243.ToString(),
            report.Regions.Select(r => ScenarioRunner.RunState.Setup(host, vmm, r, st.Spec.Mte)).ToList())
        { Cap243Sys = sysCap.ToString() };
    }

    public IReadOnlyList<ExpectField> Expect { get; } =
    [
        new("outcome", ExpectFields.StartOutcomes, (r, _) => LabText.Start(((StartResult)r).Outcome),
            x => ExpectFields.StartOutcomes.Contains(x) ? null : $"'{x}' is not an outcome: {string.Join(", ", ExpectFields.StartOutcomes)}"),
        new("errno", null, (r, _) => LabText.Errno(((StartResult)r).Errno), ExpectField.ErrnoProblem, ExpectField.ErrnoMatches),
        new("memslots", null, (r, key) => ((StartResult)r).Regions.FirstOrDefault(x => x.Region == key)?.Text ?? "(no such region)",
            x => ExpectField.IsErrnoOrOk(x, allowSkipped: true) ? null : $"'{x}' is not ok, skipped or an errno name (EINVAL, EFAULT, ...)",
            ExpectField.ErrnoMatches, Keyed: true),
        new("cap243", ["0", "1", "EINVAL"], (r, _) => ((StartResult)r).Cap243,
            x => x is "0" or "1" or "EINVAL" ? null : "expected 0, 1 or EINVAL"),
        new("cap243.sys", ["0", "1", "EINVAL"], (r, _) => ((StartResult)r).Cap243Sys,
            x => x is "0" or "1" or "EINVAL" ? null : "expected 0, 1 or EINVAL"),
    ];
}

/// <summary><c>stop: VM</c> or <c>{vm}</c>: the VMM destroys the VM.</summary>
internal sealed class StopStepKind : IStepKind
{
    public string Name => "stop";

    public StepSpec? Read(StepReader r) =>
        r.Scenario.ReadVmOnly(r.Body, r.Path) is { } vm ? new StopStep(r.Index, r.Id, r.Body.Start, vm.Name) : null;

    public bool Check(StepSpec step, StepReader r) => true;

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (StopStep)step;
        var st = run.Vms[s.Vm];
        var was = st.Vm is not null ? st.Dead ? "stopped (the guest had failed)" : "stopped" : $"was not running: {st.NotRunningReason}";
        st.Destroy();
        if (was.StartsWith("stopped", StringComparison.Ordinal))
            st.NotRunningReason = $"it was stopped on {st.LastHost} (step {s.Label})";
        return new StopResult(s.Index, s.Label, s.Vm, was);
    }

    public IReadOnlyList<ExpectField> Expect { get; } = [];
}
