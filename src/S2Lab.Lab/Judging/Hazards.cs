using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Judging;

/// <summary>A hazard the Lab judges from kernel events (docs/architecture.md, "Hazards, defined once").</summary>
public enum HazardKind
{
    /// <summary>The guest's effective type is non-cacheable at a PA the host maps cacheable.</summary>
    MismatchedAlias,

    /// <summary>KVM needed a CMO for a new or upgraded leaf and the pfn has no kernel VA.</summary>
    ImpossibleMaintenance,

    /// <summary>Memory (kernel RAM or device memory such as GPU HBM) the guest sees as Device.</summary>
    RamAsDevice,

    /// <summary>A read returned bytes other than the last write anyone made there (issue 12).</summary>
    StaleRead,

    /// <summary>
    /// A migration's device copy, made through the VMM's cacheable mapping, can miss (possible) or did miss (observed)
    /// the guest's last write.
    /// </summary>
    StaleCopy,
}

/// <summary>
/// One word of device memory a migration's copy moved wrong: at <paramref name="Offset"/> of the region, the destination
/// VMM's mapping holds <paramref name="Copied"/> where the last write on the source left <paramref name="Expected"/>.
/// </summary>
public readonly record struct CopiedWord(ulong Offset, ulong Copied, ulong Expected);

/// <summary>What makes a mismatched alias non-cacheable.</summary>
public enum AliasCause
{
    /// <summary>Not a mismatched alias.</summary>
    None,

    /// <summary>KVM's stage-2 type is not Normal (Device or Normal-NC): the design forced it.</summary>
    Stage2,

    /// <summary>Stage 2 is Normal and the guest's own stage-1 MAIR makes the access non-cacheable.</summary>
    GuestStage1,
}

/// <summary>One judged hazard: its kind, for a mismatched alias its cause, and why.</summary>
public sealed record Hazard(HazardKind Kind, AliasCause Cause, string Detail)
{
    /// <summary>The report word: mismatched-alias, impossible-maintenance, ram-as-device.</summary>
    public string Name => Runner.LabText.Word(Kind);

    public override string ToString() => $"{Kind}: {Detail}";
}

/// <summary>
/// The one definition of each hazard. Scorecard properties 4 and 5 count these; reports and explanations show them.
/// </summary>
public static class Hazards
{
    /// <summary>
    /// Whether the host maps the PA cacheable at the time of the fault that mapped it: through its linear map
    /// (pfn_is_map_memory), through a cacheable VMA over the pfn (rule 3), or through a guest_memfd-only slot.
    /// </summary>
    public static bool HostMapsCacheable(FaultFacts host) => host.MapMemory || host.VmaCacheable || host.GuestMemfd;

    /// <summary>
    /// Mismatched alias: a completed guest access whose effective type is Non-cacheable (Normal-NC or any Device) at a
    /// PA the host maps cacheable (<see cref="HostMapsCacheable"/>). Null for an access without a combine (the
    /// allocation-free path gives no stage-1 attribute) or without the hazard.
    /// </summary>
    public static Hazard? MismatchedAlias(MemoryAccessed a, FaultFacts host, bool fwb)
    {
        if (a.Effective is not { } eff || eff.Attributes.IsAnyCacheable || !HostMapsCacheable(host))
            return null;
        var leaf = a.Leaf;
        var cause = leaf.KvmType != KvmS2MemType.Normal ? AliasCause.Stage2 : AliasCause.GuestStage1;
        var who = cause == AliasCause.Stage2
            ? $"stage 2 forces {KvmS2MemAttr.Name(leaf.KvmType, fwb)}"
            : $"the guest's stage-1 attribute 0x{a.Input?.S1Attr:X2} makes it non-cacheable";
        var where = host.MapMemory ? "the kernel's linear map"
            : host.GuestMemfd ? "the guest_memfd mapping"
            : $"the host VMA {host.Vma} ({host.VmaPgProt})";
        return new Hazard(HazardKind.MismatchedAlias, cause, $"{where} is cacheable but the guest sees {eff.Attributes.Description}: {who}");
    }

    /// <summary>
    /// Impossible maintenance: KVM needed a CMO for a leaf (a D-cache clean+invalidate of a new cacheable leaf
    /// without FWB, an I-cache invalidate of an executable leaf without DIC) and the pfn has no kernel VA.
    /// </summary>
    public static Hazard? ImpossibleMaintenance(CmoRequired c)
    {
        if (!c.IsImpossible)
            return null;
        var pfn = c.Pa >> PAGE_SHIFT;
        return new Hazard(HazardKind.ImpossibleMaintenance, AliasCause.None, c.Op == CacheOp.DcCivac
            ? $"cacheable stage-2 leaf over pfn {pfn:x} outside the linear map without FWB: the D-cache clean+invalidate to PoC has no kernel VA"
            : $"executable stage-2 leaf over pfn {pfn:x} outside the linear map without DIC: the I-cache invalidation has no kernel VA");
    }

    /// <summary>
    /// RAM seen as Device: a completed guest access with an effective Device type at a PA that is memory: kernel RAM
    /// or a physical region of kind <see cref="PhysRegionKind.DeviceMemory"/> (GPU HBM).
    /// </summary>
    public static Hazard? RamAsDevice(MemoryAccessed a, PhysRegion? region)
    {
        if (a.Effective is not { } eff || !eff.Attributes.IsDevice || region is null)
            return null;
        if (!region.IsMapMemory && region.Kind != PhysRegionKind.DeviceMemory)
            return null;
        return new Hazard(HazardKind.RamAsDevice, AliasCause.None,
            $"{(region.IsMapMemory ? "RAM" : region.Name)} is memory, but the guest sees {eff.Attributes.Description}: unaligned accesses and atomics fault, no speculation or caching");
    }

    /// <summary>
    /// Stale read: a completed read returned <paramref name="got"/> where the last write anyone made there, in program
    /// order, was <paramref name="want"/>. Around the cache (<paramref name="path"/> Bypass) it read the PoC under a
    /// line a cacheable alias holds; through it, a line the PoC has moved past. Null when the bytes match.
    /// </summary>
    public static Hazard? StaleRead(ulong got, ulong want, Arch.Caches.AccessPath? path, string? effective)
    {
        if (got == want)
            return null;
        var route = path is { } p ? Runner.LabText.Word(p) : "?";
        return new Hazard(HazardKind.StaleRead, AliasCause.None, $"read 0x{got:X16}, expected 0x{want:X16} ({route}, {effective}): " +
            (path == Arch.Caches.AccessPath.Bypass
                ? "a Non-cacheable or Device read goes around a line a cacheable alias holds (B2.11, D7.5.1)"
                : "a cacheable read hit a line the PoC has moved past (B2.11)"));
    }

    /// <summary>
    /// Stale copy: a migration copied device memory <paramref name="region"/> through the VMM's mapping during
    /// stop-and-copy. Observed (<paramref name="wrong"/> set): a word arrived other than the last write on the source,
    /// so the copy read a line the PoC had moved past (B2.11), whatever the reason. Possible (<paramref name="wrong"/>
    /// null): the guest wrote the region through a non-cacheable stage-2 mapping (<paramref name="stage2"/> Device or
    /// Normal-NC: its writes went to the PoC, around the caches) while the VMM's mapping is cacheable
    /// (<paramref name="vmmCacheable"/>). That is a mismatched alias between the guest's writes and the VMM's reads:
    /// on hardware the VMM's reads can hit a line its mapping allocated at any time (D7.5.1, speculation included),
    /// even where the model's copy happened to read the PoC. Null otherwise (a region the guest only read holds what
    /// the copy reads).
    /// </summary>
    public static Hazard? StaleCopy(string region, KvmS2MemType? stage2, bool vmmCacheable, bool guestWrote, CopiedWord? wrong)
    {
        var nonCacheable = stage2 is KvmS2MemType.DeviceNGnRE or KvmS2MemType.NormalNc;
        var why = nonCacheable && vmmCacheable
            ? $"the guest wrote {region} through a {Runner.LabText.Stage2(stage2)} stage-2 mapping, the VMM copied it through its cacheable mapping"
            : null;
        if (wrong is { } w)
        {
            return new Hazard(HazardKind.StaleCopy, AliasCause.None,
                $"copied 0x{w.Copied:X16} at +0x{w.Offset:x}, expected 0x{w.Expected:X16}: " +
                (why is null
                    ? "the VMM's copy read a line older than the last write (B2.11)"
                    : $"{why}, which held a line older than the guest's write (B2.11)"));
        }

        return why is not null && guestWrote
            ? new Hazard(HazardKind.StaleCopy, AliasCause.None,
                $"{why}: on hardware the copy can miss the guest's writes (possible: B2.11, D7.5.1; in the model it carried them)")
            : null;
    }
}
