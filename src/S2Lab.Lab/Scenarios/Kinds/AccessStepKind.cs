using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary><c>access</c>: the guest touches one page of a region with a stage-1 MAIR byte, once per access type.</summary>
internal sealed class AccessStepKind : IStepKind
{
    public string Name => "access";

    public StepSpec? Read(StepReader r)
    {
        var (b, path) = (r.B, r.Path);
        var f = b.Map(r.Body, path);
        if (f is null)
            return null;
        // `gpa:` instead of `region:` (and `offset:`): an address outside every region of the VM.
        var gpaNode = f.Has("gpa") ? f.Opt("gpa") : null;
        ulong? gpa = null;
        (VmSpec, VmRegionSpec?)? rr;
        if (gpaNode is not null)
        {
            gpa = b.Size(gpaNode, $"{path}.gpa");
            var vmOnly = r.Scenario.ResolveVm(f.Req("vm"), $"{path}.vm");
            f.Opt("region");
            if (f.Has("region") || f.Has("offset"))
                b.Error(r.At(f.Has("region") ? "region" : "offset"), $"{path}.gpa", "give either gpa, or region and offset, not both");
            rr = vmOnly is null || gpa is null || f.Has("region") || f.Has("offset") ? null : (vmOnly, null);
        }
        else
        {
            rr = r.Scenario.ReadRegionRef(f, path) is { } x0 ? (x0.Item1, x0.Item2) : null;
        }

        var offset = b.Size(f.Opt("offset"), $"{path}.offset") ?? 0;
        var mairNode = f.Req("mair");
        var mair = b.Size(mairNode, $"{path}.mair");
        if (mair > 0xFF)
            b.Error(mairNode!.Start, $"{path}.mair", "a MAIR attribute is one byte (0x00 .. 0xFF)");
        var typeNode = f.Req("type");
        var types = new List<S2AccessKind>();
        if (typeNode is not null)
        {
            var items = typeNode is SequenceNode ? b.List(typeNode, $"{path}.type") : [typeNode];
            foreach (var item in items)
            {
                if (b.Enum(item, $"{path}.type", LabText.AccessWords) is { } t)
                    types.Add(t);
            }

            if (items.Count == 0)
                b.Error(typeNode.Start, $"{path}.type", "at least one access type (read, write, exec)");
        }

        var value = b.Size(f.Opt("value"), $"{path}.value") ?? 0x5EED_0000_0000_0000UL + (ulong)r.Index;
        var vcpu = b.Int(f.Opt("vcpu"), $"{path}.vcpu", 0, 511) ?? 0;
        // Issue 12: a host-side writer that writes first, and the guest's SCTLR_EL1.M and .C/.I during the accesses.
        var writerNode = f.Opt("writer");
        var writer = writerNode is null ? null : b.Enum(writerNode, $"{path}.writer", ScenarioLoader.WriterWords);
        if (writerNode is not null && gpaNode is not null)
            b.Error(writerNode.Start, $"{path}.writer", "a host-side writer writes into a region: give region and offset, not gpa");
        var mmu = OnOff(b, f.Opt("mmu"), $"{path}.mmu");
        var caches = OnOff(b, f.Opt("caches"), $"{path}.caches");
        f.Done();
        if (rr is not { } x || mair is null || mair > 0xFF || types.Count == 0 || (writerNode is not null && (writer is null || gpaNode is not null)))
            return null;
        var step = x.Item2 is null
            ? new AccessStep(r.Index, r.Id, r.Body.Start, x.Item1.Name, $"gpa 0x{gpa!.Value:x}", 0, (byte)mair.Value, types, value, vcpu) { Gpa = gpa }
            : new AccessStep(r.Index, r.Id, r.Body.Start, x.Item1.Name, x.Item2.Name, offset, (byte)mair.Value, types, value, vcpu);
        return step with { Writer = writer, Mmu = mmu ?? true, Caches = caches ?? true };
    }

    /// <summary>An optional "on"/"off" field (SCTLR_EL1 bits of an access).</summary>
    private static bool? OnOff(Binder b, SyntaxNode? node, string path) =>
        node is null ? null : b.Enum(node, path, ScenarioLoader.OnOffWords) is { } v ? v : null;

    public bool Check(StepSpec step, StepReader r)
    {
        var s = (AccessStep)step;
        var vm = r.Scenario.Vm(s.Vm);
        if (s.Gpa is { } gpa)
        {
            var inside = vm.Regions.FirstOrDefault(x => gpa >= x.Gpa && gpa < x.End);
            if (gpa % 8 != 0 || inside is not null)
            {
                r.B.Error(r.At("gpa"), $"{r.Path}.gpa", inside is null
                    ? $"gpa 0x{gpa:x} must be 8-byte aligned"
                    : $"gpa 0x{gpa:x} is inside region '{inside.Name}'; name the region and an offset instead");
                return false;
            }

            return CheckVcpu(s, vm, r);
        }

        var region = vm.Region(s.Region)!;
        // Compared without adding, so that a huge offset cannot wrap around into the region.
        if (s.Offset % 8 != 0 || region.Size < 8 || s.Offset > region.Size - 8)
        {
            r.B.Error(r.At("offset"), $"{r.Path}.offset", $"offset 0x{s.Offset:x} must be 8-byte aligned and inside region '{region.Name}' (size 0x{region.Size:x})");
            return false;
        }

        return CheckVcpu(s, vm, r);
    }

    private static bool CheckVcpu(AccessStep s, VmSpec vm, StepReader r)
    {
        if (s.Vcpu >= vm.Vcpus)
        {
            r.B.Error(r.Body.Start, $"{r.Path}.vcpu", $"VM '{vm.Name}' has {vm.Vcpus} vCPU(s)");
            return false;
        }

        return true;
    }

    public StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (AccessStep)step;
        var st = run.Vms[s.Vm];
        // An access outside every region is not replayed after a migration (the guest's regions are).
        var view = st.Touch(s.Region, s.Offset, s.Mair, s.Types, s.Value, s.Vcpu, record: s.Gpa is null, gpa: s.Gpa, step: s);
        return new AccessResult(s.Index, s.Label, view);
    }

    private static RegionAccessResult View(StepResult r) => ((AccessResult)r).Region;

    private static string Last(StepResult r, S2AccessKind kind) =>
        View(r).Accesses.LastOrDefault(x => x.Type == kind) is { } x ? LabText.Word(x.Outcome) : "(not accessed)";

    /// <summary>The expect field for the last access of one kind: its name is the kind's scenario word (read, write, exec).</summary>
    private static ExpectField Outcome(S2AccessKind kind) => new(LabText.Access(kind), ExpectFields.AccessOutcomes, (r, _) => Last(r, kind), AccessProblem);

    private static string? AccessProblem(string x) =>
        ExpectFields.AccessOutcomes.Contains(x.ToLowerInvariant()) ? null : $"'{x}' is not an access outcome: {string.Join(", ", ExpectFields.AccessOutcomes)}";

    public IReadOnlyList<ExpectField> Expect { get; } =
    [
        Outcome(S2AccessKind.Read),
        Outcome(S2AccessKind.Write),
        Outcome(S2AccessKind.Execute),
        new("stage2", ExpectFields.Stage2Types, (r, _) => LabText.Stage2(View(r).Stage2),
            x => ExpectFields.Stage2Types.Contains(x.ToLowerInvariant()) ? null : $"'{x}' is not a stage-2 type: {string.Join(", ", ExpectFields.Stage2Types)}"),
        new("stage2.size", null, (r, _) => View(r).Stage2Size is { } s ? $"0x{s:X}" : "none",
            x => x == "none" || Binder.TryParseSize(x, out _) ? null : $"'{x}' is not a size (4KiB, 2MiB, 1GiB, 0x1000) or none",
            (e, a) => e.Trim() == "none" ? a == "none" : ExpectField.NumberMatches(e, a)),
        new("stage2.level", ["1", "2", "3", "none"], (r, _) => View(r).Stage2Level is { } l ? l.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none"),
        new("effective", null, (r, _) => View(r).Effective ?? LabText.None),
        new("cmo", ["none", "possible", "impossible"], (r, _) => View(r).Cmo.Summary,
            x => x is "none" or "possible" or "impossible" ? null : $"'{x}' is not one of: none, possible, impossible"),
        new("hazards", null, (r, _) => View(r).Hazards.Count == 0 ? "none" : string.Join(",", View(r).Hazards.Select(h => h.Name)),
            Match: ExpectField.SetMatches),
        new("value", null, (r, _) => View(r).Accesses.LastOrDefault(x => x.Type == S2AccessKind.Read && x.Value is not null)?.Value is { } val ? $"0x{val:X}" : "(no read)",
            Match: ExpectField.NumberMatches),
        // What the last read should have returned (the last write anyone made): its value unless it was stale (issue 12).
        new("expected", null, (r, _) => View(r).Accesses.LastOrDefault(x => x.Type == S2AccessKind.Read && x.Value is not null) is { } rd ? $"0x{rd.Expected ?? rd.Value:X}" : "(no read)",
            Match: ExpectField.NumberMatches),
    ];
}

/// <summary><c>mprotect</c>, <c>munmap</c> and <c>remap</c>: the VMM changes part of a region's host mapping.</summary>
internal abstract class RangeStepKind : IStepKind
{
    private const ulong PageSize = 4096;

    public abstract string Name { get; }

    protected abstract bool HasProt { get; }

    public StepSpec? Read(StepReader r)
    {
        var (b, path) = (r.B, r.Path);
        var f = b.Map(r.Body, path);
        if (f is null)
            return null;
        var rr = r.Scenario.ReadRegionRef(f, path);
        var offset = b.Size(f.Opt("offset"), $"{path}.offset") ?? 0;
        var size = b.Size(f.Opt("size"), $"{path}.size");
        Prot prot = Prot.PROT_NONE;
        if (HasProt)
        {
            var pn = f.Req("prot");
            var ps = b.Str(pn, $"{path}.prot");
            if (ps is not null && !TryParseProt(ps, out prot))
                b.Error(pn!.Start, $"{path}.prot", $"'{ps}' is not a protection: none, r, rw, rx, rwx");
        }

        var more = ReadMore(r, f);
        f.Done();
        if (rr is not { } x || (more is null && NeedsMore))
            return null;
        var len = size ?? (x.Item2.Size - Math.Min(offset, x.Item2.Size));
        return Create(r, x.Item1.Name, x.Item2.Name, offset, len, prot, more);
    }

    /// <summary>Whether <see cref="ReadMore"/> must return something for the step to exist.</summary>
    protected virtual bool NeedsMore => false;

    /// <summary>The kind's own fields beyond the range (null: none, or an error was reported).</summary>
    protected virtual object? ReadMore(StepReader r, Fields f) => null;

    protected abstract StepSpec Create(StepReader r, string vm, string region, ulong offset, ulong size, Prot prot, object? more);

    protected abstract (string Vm, string Region, ulong Offset, ulong Size) RangeOf(StepSpec step);

    public bool Check(StepSpec step, StepReader r)
    {
        var (vm, region, offset, len) = RangeOf(step);
        var reg = r.Scenario.Vm(vm).Region(region)!;
        if (offset % PageSize != 0 || len % PageSize != 0 || len == 0 || offset > reg.Size || len > reg.Size - offset)
        {
            r.B.Error(r.At("size"), $"{r.Path}.size", $"[offset, offset + size) must be whole pages inside region '{reg.Name}' (size 0x{reg.Size:x})");
            return false;
        }

        return true;
    }

    public abstract StepResult? Execute(StepSpec step, ScenarioRunner.RunState run);

    public IReadOnlyList<ExpectField> Expect { get; } =
    [
        new("result", null, (r, _) => LabText.Errno(((RangeResult)r).Errno), ExpectField.ErrnoProblem, ExpectField.ErrnoMatches),
    ];

    private static bool TryParseProt(string s, out Prot prot)
    {
        prot = Prot.PROT_NONE;
        if (s == "none")
            return true;
        foreach (var c in s)
        {
            var bit = c switch { 'r' => Prot.PROT_READ, 'w' => Prot.PROT_WRITE, 'x' => Prot.PROT_EXEC, _ => Prot.PROT_NONE };
            if (bit == Prot.PROT_NONE || (prot & bit) != 0)
                return false;
            prot |= bit;
        }

        return prot != Prot.PROT_NONE;
    }
}

/// <summary><c>mprotect: {vm, region, offset, size, prot}</c>.</summary>
internal sealed class MprotectStepKind : RangeStepKind
{
    public override string Name => "mprotect";

    protected override bool HasProt => true;

    protected override StepSpec Create(StepReader r, string vm, string region, ulong offset, ulong size, Prot prot, object? more) =>
        new MprotectStep(r.Index, r.Id, r.Body.Start, vm, region, offset, size, prot);

    protected override (string, string, ulong, ulong) RangeOf(StepSpec step) =>
        step is MprotectStep s ? (s.Vm, s.Region, s.Offset, s.Size) : throw new ArgumentException(step.Kind);

    public override StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (MprotectStep)step;
        return run.Range(s, s.Vm, s.Region, "mprotect", vm => vm.Mprotect(s.Region, s.Offset, s.Size, s.Prot));
    }
}

/// <summary><c>munmap: {vm, region, offset, size}</c>.</summary>
internal sealed class MunmapStepKind : RangeStepKind
{
    public override string Name => "munmap";

    protected override bool HasProt => false;

    protected override StepSpec Create(StepReader r, string vm, string region, ulong offset, ulong size, Prot prot, object? more) =>
        new MunmapStep(r.Index, r.Id, r.Body.Start, vm, region, offset, size);

    protected override (string, string, ulong, ulong) RangeOf(StepSpec step) =>
        step is MunmapStep s ? (s.Vm, s.Region, s.Offset, s.Size) : throw new ArgumentException(step.Kind);

    public override StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (MunmapStep)step;
        return run.Range(s, s.Vm, s.Region, "munmap", vm => vm.Munmap(s.Region, s.Offset, s.Size));
    }
}
