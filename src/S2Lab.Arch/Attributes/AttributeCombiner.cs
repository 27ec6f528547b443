using System.Runtime.CompilerServices;

namespace S2Lab.Arch.Attributes;

/// <summary>The kind of access being translated.</summary>
public enum AccessKind : byte
{
    /// <summary>A data read or write.</summary>
    Data,

    /// <summary>An instruction fetch.</summary>
    InstructionFetch,
}

/// <summary>Inputs that were not plain architectural encodings; the result then reflects S2Lab's documented choice.</summary>
[Flags]
public enum CombineDiagnostics
{
    None = 0,

    /// <summary>The stage-1 MAIR byte is UNPREDICTABLE or RESMAIR (<see cref="MairIssue"/>).</summary>
    S1AttrInvalid = 1 << 0,

    /// <summary>The stage-2 MemAttr is a reserved encoding (<see cref="Stage2MemAttrIssue"/>).</summary>
    S2MemAttrReserved = 1 << 1,

    /// <summary>The stage-1 SH field is the reserved 0b01 (taken as OSH, <see cref="ShareabilityRules.Resolve"/>).</summary>
    S1ShReserved = 1 << 2,

    /// <summary>The stage-2 SH field is the reserved 0b01 (taken as OSH, <see cref="ShareabilityRules.Resolve"/>).</summary>
    S2ShReserved = 1 << 3,
}

/// <summary>
/// Everything that decides the effective memory type of one EL1&amp;0 access with stage 2 enabled (docs/arm-reference.md#combine).
/// Construct it with the constructor: the control bits then default to the common case (stage-1 MMU and caches on,
/// data access, no FEAT_XS/MTE). <c>default(CombineInput)</c> instead means SCTLR_EL1.M=C=I=0.
/// </summary>
/// <param name="S1Attr">Stage-1 MAIR attribute byte (MAIR_EL1.Attr[AttrIndx]); ignored when stage 1 is off.</param>
/// <param name="S1Sh">Stage-1 descriptor SH (raw; EffectiveShareability is applied after combining).</param>
/// <param name="S2MemAttr">Stage-2 descriptor MemAttr[3:0] (bits [5:2]).</param>
/// <param name="S2Sh">Stage-2 descriptor SH (bits [9:8], or VTCR_EL2.SH0 with DS=1).</param>
/// <param name="Fwb">HCR_EL2.FWB.</param>
/// <param name="HcrCd">HCR_EL2.CD: stage-2 data accesses to Normal memory become Non-cacheable.</param>
public readonly record struct CombineInput(byte S1Attr, Shareability S1Sh, byte S2MemAttr, Shareability S2Sh, bool Fwb, bool HcrCd = false)
{
    /// <summary>SCTLR_EL1.M: stage-1 MMU on. When off, stage 1 outputs fixed attributes (docs/arm-reference.md#control-bits).</summary>
    public bool SctlrM { get; init; } = true;

    /// <summary>SCTLR_EL1.C: when 0, a data access to stage-1 Normal memory is Normal iNC oNC.</summary>
    public bool SctlrC { get; init; } = true;

    /// <summary>SCTLR_EL1.I: when 0, instruction fetches are Normal NC (MMU on), or NC instead of WT (MMU off).</summary>
    public bool SctlrI { get; init; } = true;

    /// <summary>HCR_EL2.DC: stage 1 behaves as off and outputs Normal iWB oWB RWA, Non-shareable.</summary>
    public bool HcrDc { get; init; }

    /// <summary>HCR_EL2.DCT: with DC=1 the default attribute is Tagged (0xF0).</summary>
    public bool HcrDct { get; init; }

    /// <summary>HCR_EL2.ID: stage-2 instruction fetches become Non-cacheable.</summary>
    public bool HcrId { get; init; }

    /// <summary>Stage-2 descriptor FnXS (bit 11, FEAT_XS): forces XS=0 in the result.</summary>
    public bool S2FnXs { get; init; }

    /// <summary>Data access or instruction fetch.</summary>
    public AccessKind Access { get; init; }

    /// <summary>Features of the CPU (FEAT_XS, FEAT_MTE2, FEAT_MTE_PERM).</summary>
    public AttributeFeatures Features { get; init; }
}

/// <summary>The effective attributes of an access, as PAR_EL1 would report them, with easy classification.</summary>
/// <param name="Attributes">The final decoded attribute.</param>
/// <param name="Shareability">The effective shareability (Device and Normal iNC oNC are always OSH).</param>
/// <param name="NoTagAccess">FEAT_MTE_PERM: the result is Tagged but tag access is not permitted (PAR reads 0xE0).</param>
/// <param name="Diagnostics">Reserved or UNPREDICTABLE inputs that S2Lab resolved by a documented choice.</param>
public readonly record struct CombineResult(MemoryAttributes Attributes, Shareability Shareability, bool NoTagAccess, CombineDiagnostics Diagnostics)
{
    /// <summary>PAR_EL1.ATTR: the result in MAIR format (0xE0 for Tagged with NoTagAccess).</summary>
    public byte ParAttr => NoTagAccess && Attributes.Tagged ? (byte)0xE0 : Mair.Encode(Attributes);

    /// <summary>Device memory (any type).</summary>
    public bool IsDevice => Attributes.IsDevice;

    /// <summary>Normal memory with both inner and outer write-back: cacheable in the sense that matters to KVM.</summary>
    public bool IsWriteBackCacheable => Attributes.IsWriteBack;

    /// <summary>Device or Normal iNC oNC: no cache holds the data.</summary>
    public bool IsNonCacheable => Attributes.IsNonCacheable;

    /// <summary>MTE Allocation Tagged.</summary>
    public bool IsTagged => Attributes.Tagged;

    /// <summary>The description used by the test vectors (docs/arm-reference.md#vectors), e.g. "Normal oWB.RWA iWB.RWA" or "Device-nGnRE".</summary>
    public string Description => Attributes.Description;

    /// <summary>"0x04 Device-nGnRE OSH".</summary>
    public override string ToString() => $"0x{ParAttr:X2} {Description} {Shareability}";
}

/// <summary>The part of the combine computation that produced a step of the explanation.</summary>
public enum CombineStepKind
{
    /// <summary>What stage 1 contributes (MAIR decode, MMU off, SCTLR.C/I, HCR_EL2.DC).</summary>
    Stage1,

    /// <summary>What stage 2 contributes (MemAttr decode, reserved encodings).</summary>
    Stage2,

    /// <summary>The FWB=0 combine or the FWB=1 override.</summary>
    Combine,

    /// <summary>HCR_EL2.CD/ID overrides after stage 2.</summary>
    Control,

    /// <summary>MTE tags.</summary>
    Tags,

    /// <summary>Shareability.</summary>
    Shareability,

    /// <summary>The final answer.</summary>
    Result,
}

/// <summary>One step of a combine explanation.</summary>
public readonly record struct CombineStep(CombineStepKind Kind, string Text)
{
    public override string ToString() => Text;
}

/// <summary>A result and the steps that decided it, in order.</summary>
public sealed record CombineExplanation(CombineResult Result, IReadOnlyList<CombineStep> Steps);

/// <summary>
/// Combines stage-1 and stage-2 attributes into the effective attribute (docs/arm-reference.md#combine: <c>S2CombineS1MemAttrs</c> for FWB=0,
/// <c>AArch64.S2ApplyFWBMemAttrs</c> for FWB=1, plus the control-bit overrides of <c>AArch64.S1DisabledOutput</c>,
/// <c>AArch64.S1Translate</c> and <c>AArch64.S2Translate</c>). Pure and allocation-free unless an explanation is asked for.
/// </summary>
public static class AttributeCombiner
{
    /// <summary>The effective attributes (fast path: no allocation).</summary>
    public static CombineResult Combine(in CombineInput input)
    {
        var tracer = default(NoTracer);
        return Run(input, ref tracer);
    }

    /// <summary>The effective attributes; when <paramref name="explanation"/> is not null, each deciding step is appended to it.</summary>
    public static CombineResult Combine(in CombineInput input, List<CombineStep>? explanation)
    {
        if (explanation is null)
        {
            return Combine(input);
        }

        var tracer = new ListTracer(explanation);
        return Run(input, ref tracer);
    }

    /// <summary>The effective attributes with the steps that decided them.</summary>
    public static CombineExplanation Explain(in CombineInput input)
    {
        var steps = new List<CombineStep>();
        var result = Combine(input, steps);
        return new CombineExplanation(result, steps);
    }

    private interface ITracer
    {
        static abstract bool Enabled { get; }

        void Add(CombineStepKind kind, string text);
    }

    private struct NoTracer : ITracer
    {
        public static bool Enabled => false;

        public readonly void Add(CombineStepKind kind, string text)
        {
        }
    }

    private readonly struct ListTracer(List<CombineStep> steps) : ITracer
    {
        public static bool Enabled => true;

        public void Add(CombineStepKind kind, string text) => steps.Add(new CombineStep(kind, text));
    }

    private static string Hex(byte b) => $"0x{b:X2}";

    /// <summary>Stage-2 attributes have no hints; describe only the cacheability.</summary>
    private static string S2Text(in MemoryAttributes a) => a.IsDevice
        ? $"Device-{a.DeviceType}"
        : $"Normal o{Short(a.Outer)} i{Short(a.Inner)}";

    private static string Short(CacheAttributes half) => half.Cacheability switch
    {
        Cacheability.WriteBack => "WB",
        Cacheability.WriteThrough => "WT",
        _ => "NC",
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DeviceType Stronger(DeviceType a, DeviceType b) => a <= b ? a : b;

    private static CombineResult Run<T>(in CombineInput input, ref T trace) where T : struct, ITracer
    {
        var features = input.Features;
        var hasXs = (features & AttributeFeatures.Xs) != 0;
        var ifetch = input.Access == AccessKind.InstructionFetch;
        var diagnostics = CombineDiagnostics.None;

        // ---- Stage 1 ------------------------------------------------------------------------------------------
        MemoryAttributes s1;
        Shareability s1Sh;
        if (input.HcrDc)
        {
            // AArch64.S1DisabledOutput, EL1&0 with HCR_EL2.DC=1: Normal WB RWA (Tagged with DCT), Non-shareable.
            s1 = (input.HcrDct ? MemoryAttributes.NormalTagged : MemoryAttributes.NormalWriteBack).WithXs(!hasXs);
            s1Sh = Shareability.NSH;
            if (T.Enabled)
            {
                trace.Add(CombineStepKind.Stage1, $"HCR_EL2.DC=1: stage 1 is off and outputs {s1.Description}, NSH");
            }
        }
        else if (!input.SctlrM)
        {
            s1Sh = Shareability.OSH;
            if (!ifetch)
            {
                s1 = MemoryAttributes.Device(DeviceType.nGnRnE);
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage1, "SCTLR_EL1.M=0: stage 1 is off; a data access is Device-nGnRnE, OSH");
                }
            }
            else
            {
                var wtRa = new CacheAttributes(Cacheability.WriteThrough, AllocationHints.ReadAllocate);
                s1 = input.SctlrI ? MemoryAttributes.Normal(wtRa, wtRa) : MemoryAttributes.NormalNonCacheable();
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage1,
                        $"SCTLR_EL1.M=0: stage 1 is off; an instruction fetch with SCTLR_EL1.I={(input.SctlrI ? 1 : 0)} is {s1.Description}, OSH");
                }
            }
        }
        else
        {
            var decoded = Mair.Decode(input.S1Attr, features);
            s1 = decoded.Attributes;
            s1Sh = input.S1Sh;
            if (!decoded.IsValid)
            {
                diagnostics |= CombineDiagnostics.S1AttrInvalid;
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage1, $"S1 MAIR {Hex(input.S1Attr)} is not a valid encoding ({decoded.Issue}); S2Lab uses {s1.Description}");
                }
            }
            else if (T.Enabled)
            {
                trace.Add(CombineStepKind.Stage1, $"S1 MAIR {Hex(input.S1Attr)} is {s1.Description}, SH {input.S1Sh}");
            }

            if (ifetch && (s1.IsDevice || !input.SctlrI))
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage1, s1.IsDevice
                        ? $"an instruction fetch from S1 {s1.Description} is treated as Normal iNC oNC"
                        : "SCTLR_EL1.I=0: the instruction fetch is treated as Normal iNC oNC");
                }

                s1 = MemoryAttributes.NormalNonCacheable(s1.Xs);
            }
            else if (!ifetch && s1.IsNormal && !input.SctlrC)
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage1, $"SCTLR_EL1.C=0: the data access to S1 {s1.Description} is treated as Normal iNC oNC");
                }

                s1 = MemoryAttributes.NormalNonCacheable(s1.Xs);
            }
        }

        if (s1Sh == Shareability.Reserved)
        {
            diagnostics |= CombineDiagnostics.S1ShReserved;
            if (T.Enabled)
            {
                trace.Add(CombineStepKind.Shareability, "S1 SH=0b01 is reserved (CONSTRAINED UNPREDICTABLE); S2Lab takes OSH");
            }
        }

        if (input.S2Sh == Shareability.Reserved)
        {
            diagnostics |= CombineDiagnostics.S2ShReserved;
            if (T.Enabled)
            {
                trace.Add(CombineStepKind.Shareability, "S2 SH=0b01 is reserved (CONSTRAINED UNPREDICTABLE); S2Lab takes OSH");
            }
        }

        // ---- Stage 2 and combining ----------------------------------------------------------------------------
        MemoryAttributes result;
        bool noTagAccess;
        var memAttr = (byte)(input.S2MemAttr & 0xF);
        var s2Xs = !(hasXs && input.S2FnXs);

        if (!input.Fwb)
        {
            var d = Stage2MemAttr.DecodeNoFwb(memAttr, features);
            var s2 = d.Attributes.WithXs(s2Xs);
            if (d.Issue != Stage2MemAttrIssue.None)
            {
                diagnostics |= CombineDiagnostics.S2MemAttrReserved;
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage2, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} (FWB=0) has a reserved inner cacheability; S2Lab chooses NC: {S2Text(s2)}");
                }
            }
            else if (T.Enabled)
            {
                trace.Add(CombineStepKind.Stage2, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} (FWB=0) is {S2Text(s2)}{(d.NoTagAccess ? " with NoTagAccess" : "")}");
            }

            // AArch64.S2Translate: HCR_EL2.ID / CD act on the stage-2 attributes before they are combined.
            if (ifetch && (s2.IsDevice || input.HcrId))
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Control, s2.IsDevice
                        ? $"an instruction fetch from S2 {S2Text(s2)} is treated as Normal iNC oNC"
                        : "HCR_EL2.ID=1: the instruction fetch is Non-cacheable at stage 2");
                }

                s2 = MemoryAttributes.NormalNonCacheable(s2.Xs);
            }
            else if (!ifetch && s2.IsNormal && input.HcrCd)
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Control, $"HCR_EL2.CD=1: the data access to S2 {S2Text(s2)} is Non-cacheable at stage 2");
                }

                s2 = MemoryAttributes.NormalNonCacheable(s2.Xs);
            }

            result = CombineNoFwb(s1, s2, ref trace);
            result = result.IsWriteBack ? result.WithXs(!hasXs) : result.WithXs(s1.Xs && s2.Xs);
            result = ApplyTags(s1, result, ref trace);
            noTagAccess = d.NoTagAccess && result.Tagged;
        }
        else
        {
            var d = Stage2MemAttr.DecodeFwb(memAttr, features);
            if (d.Issue != Stage2MemAttrIssue.None)
            {
                diagnostics |= CombineDiagnostics.S2MemAttrReserved;
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Stage2, d.Issue == Stage2MemAttrIssue.FwbReserved100
                        ? $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB is reserved; S2Lab follows the ASL, which treats it as 0b101"
                        : $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB sets RES0 bit 3; the type comes from MemAttr[2:0]");
                }
            }

            result = ApplyFwb(s1, memAttr, d, hasXs, ref trace);
            if (hasXs && input.S2FnXs)
            {
                result = result.WithXs(false);
            }

            result = ApplyTags(s1, result, ref trace);
            noTagAccess = d.NoTagAccess && result.Tagged;

            // AArch64.S2Translate: with FWB the CD/ID overrides act on the already combined attributes.
            if (ifetch && (result.IsDevice || input.HcrId))
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Control, result.IsDevice
                        ? $"an instruction fetch from {result.Description} is treated as Normal iNC oNC"
                        : $"HCR_EL2.ID=1: the instruction fetch turns {result.Description} into Normal iNC oNC");
                }

                result = MemoryAttributes.NormalNonCacheable(result.Xs);
                noTagAccess = false;
            }
            else if (!ifetch && result.IsNormal && input.HcrCd)
            {
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Control, $"HCR_EL2.CD=1 applies after the FWB override: {result.Description} becomes Normal iNC oNC");
                }

                result = MemoryAttributes.NormalNonCacheable(result.Xs);
                noTagAccess = false;
            }
        }

        // ---- Shareability -------------------------------------------------------------------------------------
        var combinedSh = ShareabilityRules.Combine(s1Sh, input.S2Sh);
        var sh = result.IsNonCacheable ? Shareability.OSH : combinedSh;
        if (T.Enabled)
        {
            trace.Add(CombineStepKind.Shareability, result.IsNonCacheable && combinedSh != Shareability.OSH
                ? $"SH: {(result.IsDevice ? "a Device" : "a Normal iNC oNC")} result is always Outer Shareable (S1 {s1Sh} + S2 {input.S2Sh} would give {combinedSh})"
                : $"SH: S1 {s1Sh} + S2 {input.S2Sh} gives {sh} (the wider wins)");
            trace.Add(CombineStepKind.Result, $"effective: 0x{(noTagAccess && result.Tagged ? 0xE0 : Mair.Encode(result)):X2} {result.Description}, {sh}");
        }

        return new CombineResult(result, sh, noTagAccess, diagnostics);
    }

    /// <summary>S2CombineS1MemAttrs (FWB=0), without XS/tags/shareability.</summary>
    private static MemoryAttributes CombineNoFwb<T>(in MemoryAttributes s1, in MemoryAttributes s2, ref T trace) where T : struct, ITracer
    {
        if (s1.IsDevice && s2.IsDevice)
        {
            var type = Stronger(s1.DeviceType, s2.DeviceType);
            if (T.Enabled)
            {
                trace.Add(CombineStepKind.Combine, $"both stages are Device: the stronger type wins, S1 {s1.DeviceType} vs S2 {s2.DeviceType} gives {type}");
            }

            return MemoryAttributes.Device(type);
        }

        if (s1.IsDevice || s2.IsDevice)
        {
            var device = s1.IsDevice ? s1 : s2;
            if (T.Enabled)
            {
                trace.Add(CombineStepKind.Combine, s1.IsDevice
                    ? $"S1 {s1.Description} wins over S2 {S2Text(s2)}: Device beats Normal, and the type comes from the Device stage"
                    : $"S2 {S2Text(s2)} wins over S1 {s1.Description}: Device beats Normal, and the type comes from the Device stage");
            }

            return MemoryAttributes.Device(device.DeviceType);
        }

        var inner = CombineHalf(s1.Inner, s2.Inner);
        var outer = CombineHalf(s1.Outer, s2.Outer);
        var result = MemoryAttributes.Normal(inner, outer);
        if (T.Enabled)
        {
            trace.Add(CombineStepKind.Combine, $"both Normal: per half the weaker cacheability wins (NC < WT < WB) and hints come from S1: outer {Short(s1.Outer)}+{Short(s2.Outer)} gives {outer}, inner {Short(s1.Inner)}+{Short(s2.Inner)} gives {inner}");
        }

        return result;
    }

    /// <summary>S2CombineS1AttrHints: NC if either is NC, else WT if either is WT, else WB; hints and transient from stage 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static CacheAttributes CombineHalf(CacheAttributes s1, CacheAttributes s2)
    {
        var c = s1.Cacheability <= s2.Cacheability ? s1.Cacheability : s2.Cacheability;
        return new CacheAttributes(c, s1.Hints, s1.Transient);
    }

    /// <summary>AArch64.S2ApplyFWBMemAttrs, without XS/tags/shareability.</summary>
    private static MemoryAttributes ApplyFwb<T>(in MemoryAttributes s1, byte memAttr, in Stage2FwbDecoding d, bool hasXs, ref T trace) where T : struct, ITracer
    {
        switch (d.Action)
        {
            case FwbAction.Device:
                {
                    var type = s1.IsDevice ? Stronger(s1.DeviceType, d.DeviceType) : d.DeviceType;
                    if (T.Enabled)
                    {
                        trace.Add(CombineStepKind.Combine, s1.IsDevice
                            ? $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB is Device-{d.DeviceType}; S1 is {s1.Description}, so the stronger type wins: {type}"
                            : $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB forces Device-{d.DeviceType} over S1 {s1.Description}");
                    }

                    return MemoryAttributes.Device(type, s1.Xs);
                }

            case FwbAction.UseStage1:
                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Combine, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB uses the stage-1 attributes unchanged: {s1.Description}");
                }

                return s1;

            case FwbAction.ForceWriteBack:
                {
                    var inner = s1.IsNormal && s1.Inner.IsCacheable
                        ? new CacheAttributes(Cacheability.WriteBack, s1.Inner.Hints, s1.Inner.Transient)
                        : CacheAttributes.WriteBackRwa;
                    var outer = s1.IsNormal && s1.Outer.IsCacheable
                        ? new CacheAttributes(Cacheability.WriteBack, s1.Outer.Hints, s1.Outer.Transient)
                        : CacheAttributes.WriteBackRwa;
                    var result = MemoryAttributes.Normal(inner, outer, xs: !hasXs);
                    if (T.Enabled)
                    {
                        trace.Add(CombineStepKind.Combine, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB forces Normal write-back over S1 {s1.Description} (hints kept from cacheable S1 halves, else RWA)");
                    }

                    return result;
                }

            default:
                if (s1.IsDevice)
                {
                    if (T.Enabled)
                    {
                        trace.Add(CombineStepKind.Combine, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB is Non-cacheable unless S1 is Device; S1 is {s1.Description}, which is kept");
                    }

                    return s1;
                }

                if (T.Enabled)
                {
                    trace.Add(CombineStepKind.Combine, $"S2 MemAttr {Stage2MemAttr.Format(memAttr)} under FWB makes S1 {s1.Description} Normal iNC oNC");
                }

                return MemoryAttributes.NormalNonCacheable(s1.Xs);
        }
    }

    /// <summary>S2MemTagType: Tagged only if stage 1 was Tagged and the result is Normal iWB oWB RWA non-transient.</summary>
    private static MemoryAttributes ApplyTags<T>(in MemoryAttributes s1, in MemoryAttributes result, ref T trace) where T : struct, ITracer
    {
        if (!s1.Tagged)
        {
            return result.Tagged ? result.WithTagged(false) : result;
        }

        var tagged = result.WithTagged(true);
        if (T.Enabled)
        {
            trace.Add(CombineStepKind.Tags, tagged.Tagged
                ? "S1 is Tagged and the result is iWB oWB RWA: the result stays Tagged"
                : $"S1 is Tagged but the result {result.Description} is not iWB oWB RWA non-transient: tags are dropped");
        }

        return tagged;
    }
}
