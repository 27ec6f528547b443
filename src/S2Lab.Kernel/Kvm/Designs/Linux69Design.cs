using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary><c>linux-6.9</c>: 6.9 to 6.16. Special pages are Normal-NC with VM_ALLOW_ANY_UNCACHED, else Device (rule 18).</summary>
[KvmDesign("linux-6.9", 1)]
public sealed class Linux69Design : KvmDesignBase
{
    public override string Name => "linux-6.9";

    public override string Summary => "6.9-6.16: Normal-NC with VM_ALLOW_ANY_UNCACHED, else Device-nGnRE; a cacheable VMA is silently demoted";

    public override KernelVersion BaseVersion => new(6, 9);

    public override Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx) =>
        ctx.IsSpecial
            ? NonCacheable(ctx, 18, ctx.VmaCacheable
                ? "6.9-6.16: a pfn outside map memory is forced non-cacheable; the cacheable VMA is silently demoted"
                : "6.9-6.16: a pfn outside map memory is forced non-cacheable")
            : Ordinary(ctx);
}
