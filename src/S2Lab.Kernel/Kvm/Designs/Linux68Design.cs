using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary><c>linux-6.8</c>: kernels before 6.9. Every special page is Device-nGnRE (rule 18).</summary>
[KvmDesign("linux-6.8", 0)]
public sealed class Linux68Design : KvmDesignBase
{
    public override string Name => "linux-6.8";

    public override string Summary => "kernels before 6.9: PFNMAP/MIXEDMAP pages outside map memory are always Device-nGnRE";

    public override KernelVersion BaseVersion => new(6, 8);

    public override Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx) =>
        ctx.IsSpecial
            ? NonCacheable(ctx, 18, "pre-6.9: a pfn outside map memory is device memory whatever the VMA says", normalNcAllowed: false)
            : Ordinary(ctx);
}
