using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>
/// <c>proposal-module-param</c>: Sean Christopherson's off-by-default admin knob. Off: exactly linux-6.17. On: a host
/// without FWB &amp;&amp; DIC maps a cacheable special VMA Normal anyway, with no CMO possible, and checks nothing at
/// memslot time. Argument: <c>on</c> or <c>off</c> (default).
/// </summary>
[KvmDesign("proposal-module-param", 4, Arguments = new[] { "on", "off" })]
public sealed class ProposalModuleParamDesign : Linux617Design
{
    public ProposalModuleParamDesign()
        : this(null)
    {
    }

    /// <param name="argument">"on"/"off" (also 1/0, true/false, y/n); null means off.</param>
    public ProposalModuleParamDesign(string? argument)
    {
        Enabled = argument?.Trim().ToLowerInvariant() switch
        {
            null or "" or "off" or "0" or "false" or "n" => false,
            "on" or "1" or "true" or "y" => true,
            _ => throw new ArgumentException($"the module parameter is 'on' or 'off', not '{argument}'"),
        };
    }

    /// <summary>The module parameter (allow cacheable PFNMAP on hosts without FWB &amp;&amp; DIC).</summary>
    public bool Enabled { get; }

    public override string Name => Enabled ? "proposal-module-param=on" : "proposal-module-param";

    public override string Summary => "as linux-6.17; with the parameter on, non-FWB hosts map cacheable VMAs Normal anyway (no CMO possible)";

    public override DesignVerdict PrepareVma(in PrepareVmaContext ctx) =>
        Enabled ? DesignVerdict.Ok(6, "module parameter on: no cacheability check at memslot time") : base.PrepareVma(ctx);

    protected override Stage2TypeDecision CacheableSpecial(in FaultTypeContext ctx) =>
        Enabled && !ctx.Cpu.SupportsCacheablePfnmap
            ? Stage2TypeDecision.Map(KvmS2MemType.Normal, 9, $"cacheable VMA over a pfn outside map memory; {Support(ctx.Cpu)}, but the module parameter is on: Normal anyway")
            : base.CacheableSpecial(ctx);
}
