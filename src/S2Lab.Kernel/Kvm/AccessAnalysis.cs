using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm;

/// <summary>The effective memory type of a completed access (the Arm combine) and the hazards it reveals.</summary>
internal static class AccessAnalysis
{
    public static void Analyse(ModelKvmVm vm, ModelKvmVcpu vcpu, GuestAccessResult r, in S2Leaf leaf, ulong pa, bool explain)
    {
        var req = r.Request;
        var input = vcpu.CombineInputFor(req.S1Mair, leaf.MemAttr, req.Type);
        CombineResult result;
        if (explain)
        {
            var ex = AttributeCombiner.Explain(input);
            result = ex.Result;
            r.Combine = ex;
            foreach (var step in ex.Steps)
                r.Step(DecisionStage.Combine, 0, step.Text);
        }
        else
        {
            result = AttributeCombiner.Combine(input);
        }
        var a = result.Attributes;
        var eff = new EffectiveMemoryType(result.ParAttr, a);
        r.Effective = eff;
        if (explain)
            r.Step(DecisionStage.Combine, 0, $"in short: S1 MAIR 0x{req.S1Mair:X2} + S2 MemAttr 0x{leaf.MemAttr:X} (FWB={(vm.Stage2.Fwb ? 1 : 0)}) = {eff}");

        var mem = vm.Host.Memory;
        var pfn = pa >> PAGE_SHIFT;
        var mapMemory = mem.PfnIsMapMemory(pfn);
        var region = mem.RegionOf(pa);

        // Mismatched alias: the host maps the memory cacheable (its VMA per rule 3, or the linear map for RAM).
        var hostCacheable = mapMemory || (r.Vma?.IsCacheable ?? r.Memslot?.GmemOnly ?? false);
        if (hostCacheable && eff.IsNonCacheable)
        {
            var who = leaf.KvmType != KvmS2MemType.Normal
                ? $"stage 2 forces {KvmS2MemAttr.Name(leaf.KvmType, vm.Stage2.Fwb)}"
                : $"the guest's stage-1 attribute 0x{req.S1Mair:X2} makes it non-cacheable";
            var host = mapMemory ? "the kernel's linear map" : $"the host VMA {r.Vma?.Name} ({r.Vma?.PageProt})";
            Add(r, HazardKind.MismatchedAlias, $"{host} is cacheable but the guest sees {eff.Description}: {who}");
        }

        // Impossible maintenance: a cacheable leaf needing a CMO the host cannot do (no FWB/DIC, no kernel VA).
        if (!mapMemory && leaf.KvmType == KvmS2MemType.Normal)
        {
            if (!vm.Stage2.Fwb)
                Add(r, HazardKind.ImpossibleMaintenance,
                    $"cacheable stage-2 leaf over pfn {pfn:x} outside the linear map without FWB: the D-cache clean+invalidate to PoC has no kernel VA");
            if (leaf.Executable && !vm.Host.Cpu.HasCacheDic)
                Add(r, HazardKind.ImpossibleMaintenance,
                    $"executable stage-2 leaf over pfn {pfn:x} outside the linear map without DIC: the I-cache invalidation has no kernel VA");
        }

        // RAM-like memory seen as Device.
        var ramLike = mapMemory || region?.Kind == PhysRegionKind.DeviceMemory;
        if (ramLike && eff.IsDevice)
            Add(r, HazardKind.RamAsDevice,
                $"{(mapMemory ? "RAM" : region!.Name)} is memory, but the guest sees {eff.Description}: unaligned accesses and atomics fault, no speculation or caching");

        if (explain)
            foreach (var h in r.Hazards)
                r.Step(DecisionStage.Hazard, 0, h.ToString());
    }

    private static void Add(GuestAccessResult r, HazardKind kind, string detail)
    {
        r.AddHazard(new Hazard(kind, detail));
    }
}
