using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>
/// <c>proposal-memslot-flag</c>: the v4-v6 position: userspace opts in per memslot with KVM_MEM_ENABLE_CACHEABLE_PFNMAP.
/// Flag set: Normal (accepted only on FWB &amp;&amp; DIC hosts and cacheable VMAs). Flag clear: forced non-cacheable,
/// whatever the VMA says.
/// </summary>
[KvmDesign("proposal-memslot-flag", 3, ExtraMemslotFlags = KvmMemFlags.ENABLE_CACHEABLE_PFNMAP)]
public sealed class ProposalMemslotFlagDesign : KvmDesignBase
{
    public override string Name => "proposal-memslot-flag";

    public override string Summary => "userspace opts in per memslot with KVM_MEM_ENABLE_CACHEABLE_PFNMAP (1<<3); flag clear demotes";

    public override KernelVersion BaseVersion => new(6, 18);

    /// <summary>Rule 2 as in the series: VM fd 1 iff FWB &amp;&amp; DIC (telling userspace the flag is usable).</summary>
    public override KvmResult<long> CacheablePfnmapCapability(CpuModel cpu, bool onVmFd) =>
        onVmFd ? KvmResult<long>.Ok(cpu.SupportsCacheablePfnmap ? 1 : 0) : Errno.EINVAL;

    /// <summary>The flag is a valid memslot flag only when the host supports cacheable PFNMAP (else EINVAL, rule 21).</summary>
    public override KvmMemFlags ExtraMemslotFlags(CpuModel cpu) =>
        cpu.SupportsCacheablePfnmap ? KvmMemFlags.ENABLE_CACHEABLE_PFNMAP : KvmMemFlags.None;

    public override DesignVerdict PrepareVma(in PrepareVmaContext ctx)
    {
        var flagged = (ctx.NewFlags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0;
        if (flagged && ctx.Vma.Flags.IsPfnmapOrMixed() && !ctx.Vma.IsCacheable)
            return DesignVerdict.Fail(Errno.EINVAL, 6, $"KVM_MEM_ENABLE_CACHEABLE_PFNMAP on the non-cacheable VMA {ctx.Vma.Name} ({ctx.Vma.PageProt})");
        return DesignVerdict.Ok(6, flagged ? "flagged slot over a cacheable VMA" : "unflagged slot: no cacheability check");
    }

    public override Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx)
    {
        if (!ctx.IsSpecial)
            return Ordinary(ctx);
        var flagged = (ctx.SlotFlags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0;
        if (!flagged)
            return NonCacheable(ctx, 10, ctx.VmaCacheable
                ? "slot without KVM_MEM_ENABLE_CACHEABLE_PFNMAP: forced non-cacheable although the VMA is cacheable"
                : "slot without KVM_MEM_ENABLE_CACHEABLE_PFNMAP over a non-cacheable VMA");
        // Flagged slots behave as 6.17 (the VMA may have changed since the memslot was created).
        if (!ctx.VmaCacheable)
            return NonCacheable(ctx, 10, "flagged slot, but the VMA is now non-cacheable");
        return ctx.Cpu.SupportsCacheablePfnmap
            ? Stage2TypeDecision.Map(KvmS2MemType.Normal, 9, $"KVM_MEM_ENABLE_CACHEABLE_PFNMAP slot over a cacheable VMA; {Support(ctx.Cpu)}: Normal")
            : Stage2TypeDecision.Fail(Errno.EFAULT, 8, $"flagged slot over a cacheable VMA; {Support(ctx.Cpu)}: the fault fails");
    }
}
