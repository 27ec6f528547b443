using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>Decisions every design shares (rules 10 and 11); designs override only what differs.</summary>
public abstract class KvmDesignBase : IKvmDesign
{
    public abstract string Name { get; }

    public abstract string Summary { get; }

    public abstract KernelVersion BaseVersion { get; }

    /// <summary>Before 6.17 capability 243 is unknown: CHECK_EXTENSION returns 0 on either fd.</summary>
    public virtual KvmResult<long> CacheablePfnmapCapability(CpuModel cpu, bool onVmFd) => KvmResult<long>.Ok(0);

    public virtual KvmMemFlags ExtraMemslotFlags(CpuModel cpu) => KvmMemFlags.None;

    public virtual DesignVerdict PrepareVma(in PrepareVmaContext ctx) => DesignVerdict.Ok(6, "no cacheability check at memslot time");

    public abstract Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx);

    /// <summary>Rule 11: not special (RAM, or PFNMAP over map memory): Normal whatever the VMA's pgprot says.</summary>
    protected static Stage2TypeDecision Ordinary(in FaultTypeContext ctx) =>
        Stage2TypeDecision.Map(KvmS2MemType.Normal, 11, ctx.PfnIsMapMemory
            ? "the pfn is kernel map memory: mapped Normal whatever the VMA's pgprot says"
            : "the VMA is neither VM_PFNMAP nor VM_MIXEDMAP: ordinary memory, mapped Normal");

    /// <summary>Rules 10 and 18: forced non-cacheable; Normal-NC with VM_ALLOW_ANY_UNCACHED (6.9+), else Device-nGnRE.</summary>
    protected static Stage2TypeDecision NonCacheable(in FaultTypeContext ctx, int rule, string why, bool normalNcAllowed = true) =>
        normalNcAllowed && ctx.AllowAnyUncached
            ? Stage2TypeDecision.Map(KvmS2MemType.NormalNc, rule, why + "; VM_ALLOW_ANY_UNCACHED: Normal-NC")
            : Stage2TypeDecision.Map(KvmS2MemType.DeviceNGnRE, rule, why + (normalNcAllowed
                ? "; no VM_ALLOW_ANY_UNCACHED: Device-nGnRE"
                : ": Device-nGnRE"));

    /// <summary>Rule 1 as text.</summary>
    protected static string Support(CpuModel cpu) =>
        $"FWB={(cpu.HasStage2Fwb ? 1 : 0)} DIC={(cpu.HasCacheDic ? 1 : 0)}: cacheable PFNMAP {(cpu.SupportsCacheablePfnmap ? "supported" : "not supported")} (rule 1)";

    public override string ToString() => Name;
}
