using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>The VMM maps a driver's VMA over part of a region's host mapping (mmap MAP_SHARED|MAP_FIXED).</summary>
public sealed record RemapStep(int Index, string? Id, SourceMark At, string Vm, string Region, ulong Offset, ulong Size, VmaPieceSpec Piece)
    : StepSpec(Index, Id, At), IVmStep
{
    public override string Kind => "remap";
}

/// <summary>
/// <c>remap: {vm, region, offset, size, map, pgprot, allowAnyUncached, pfns}</c>: while the VM runs, the VMM maps a
/// small driver's file (a <c>vmas</c> piece: <c>map</c> is <c>pfnmap</c> or <c>mixedmap</c>) with MAP_FIXED over
/// [offset, offset + size) of the region's mapping. The memslot is not touched, so nothing KVM checks at memslot
/// creation (rule 6) runs again: the old pages are unmapped (MMU notifier) and the guest's next access faults on the
/// new VMA. On an MTE VM a VMA without VM_MTE_ALLOWED then fails that fault with EFAULT at KVM_RUN
/// (kvm_vma_mte_allowed() in user_mem_abort()). The Lab installs the driver's file on every host
/// (<see cref="Install"/>); the VMM only opens and mmaps it.
/// </summary>
internal sealed class RemapStepKind : RangeStepKind
{
    public override string Name => "remap";

    protected override bool HasProt => false;

    protected override bool NeedsMore => true;

    protected override object? ReadMore(StepReader r, Fields f)
    {
        var (b, path) = (r.B, r.Path);
        var mapNode = f.Req("map");
        var map = b.Enum(mapNode, $"{path}.map", VmasBackingKind.MapWords);
        var pgprot = b.Enum(f.Req("pgprot"), $"{path}.pgprot", VmasBackingKind.PgProtWords);
        var any = b.Bool(f.Opt("allowAnyUncached"), $"{path}.allowAnyUncached") ?? false;
        var pfns = b.Enum(f.Opt("pfns"), $"{path}.pfns", VmasBackingKind.PfnWords) ?? VmaPfns.Device;
        if (map == VmaMapKind.Anon)
        {
            b.Error(mapNode!.Start, $"{path}.map", "remap maps a driver's VMA: map is pfnmap or mixedmap");
            return null;
        }

        return map is { } m && pgprot is { } p ? new VmaPieceSpec(0, 0, m, p, any, pfns) : null;
    }

    protected override StepSpec Create(StepReader r, string vm, string region, ulong offset, ulong size, Prot prot, object? more) =>
        new RemapStep(r.Index, r.Id, r.Body.Start, vm, region, offset, size, ((VmaPieceSpec)more!) with { Offset = offset, Size = size });

    protected override (string, string, ulong, ulong) RangeOf(StepSpec step) =>
        step is RemapStep s ? (s.Vm, s.Region, s.Offset, s.Size) : throw new ArgumentException(step.Kind);

    public override StepResult? Execute(StepSpec step, ScenarioRunner.RunState run)
    {
        var s = (RemapStep)step;
        return run.Range(s, s.Vm, s.Region, "remap", vm => vm.MapFile(s.Region, s.Offset, s.Size, FilePath(s)));
    }

    /// <summary>The device file of the driver behind <paramref name="step"/> (unique per step of the file).</summary>
    public static string FilePath(RemapStep step) => $"/dev/s2lab-vma/S{step.At.Line}.{step.Region}/remap";

    /// <summary>Installs the driver of <paramref name="step"/> on <paramref name="host"/>.</summary>
    public static void Install(RemapStep step, LabHost host) =>
        host.Files.Add(FilePath(step), new VmaPieceDriver(host.Host, $"{step.Region} remap", step.Piece).Mmap);
}
