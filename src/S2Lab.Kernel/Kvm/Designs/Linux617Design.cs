using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>
/// <c>linux-6.17</c>: upstream from 6.17 (the merged series). A cacheable special VMA is Normal on FWB &amp;&amp; DIC hosts
/// and -EFAULT elsewhere; cacheable VM_PFNMAP slots are refused at memslot time on such hosts. Generic behaviour
/// follows current upstream (6.18: guest_memfd on arm64).
/// </summary>
[KvmDesign("linux-6.17", 2)]
public class Linux617Design : KvmDesignBase
{
    public override string Name => "linux-6.17";

    public override string Summary => "upstream 6.17+: cacheable VMA -> Normal if FWB && DIC, else EINVAL at memslot (PFNMAP) / EFAULT at fault";

    public override KernelVersion BaseVersion => new(6, 18);

    /// <summary>Rule 2: VM fd 1 iff FWB &amp;&amp; DIC; system fd -EINVAL.</summary>
    public override KvmResult<long> CacheablePfnmapCapability(CpuModel cpu, bool onVmFd) =>
        onVmFd ? KvmResult<long>.Ok(cpu.SupportsCacheablePfnmap ? 1 : 0) : Errno.EINVAL;

    /// <summary>Rule 6 (third bullet) and rule 7: only VM_PFNMAP is checked, never VM_MIXEDMAP.</summary>
    public override DesignVerdict PrepareVma(in PrepareVmaContext ctx)
    {
        if ((ctx.Vma.Flags & Mm.VmFlags.VM_PFNMAP) != 0 && ctx.Vma.IsCacheable && !ctx.Cpu.SupportsCacheablePfnmap)
            return DesignVerdict.Fail(Errno.EINVAL, 6, $"cacheable VM_PFNMAP VMA {ctx.Vma.Name} ({ctx.Vma.PageProt}) on a host where {Support(ctx.Cpu)}");
        if ((ctx.Vma.Flags & Mm.VmFlags.VM_MIXEDMAP) != 0 && ctx.Vma.IsCacheable)
            return DesignVerdict.Ok(7, "VM_MIXEDMAP is not checked for cacheability at memslot time");
        return DesignVerdict.Ok(6, "VMA passes the cacheable-PFNMAP check");
    }

    public override Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx)
    {
        if (!ctx.IsSpecial)
            return Ordinary(ctx);
        if (!ctx.VmaCacheable)
            return NonCacheable(ctx, 10, "non-cacheable VMA over a pfn outside map memory");
        return CacheableSpecial(ctx);
    }

    /// <summary>Rules 8 and 9 for a cacheable special VMA.</summary>
    protected virtual Stage2TypeDecision CacheableSpecial(in FaultTypeContext ctx) =>
        ctx.Cpu.SupportsCacheablePfnmap
            ? Stage2TypeDecision.Map(KvmS2MemType.Normal, 9, $"cacheable VMA over a pfn outside map memory; {Support(ctx.Cpu)}: Normal")
            : Stage2TypeDecision.Fail(Errno.EFAULT, 8, $"cacheable VMA over a pfn outside map memory; {Support(ctx.Cpu)}: the fault fails");
}
