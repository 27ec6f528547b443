using System.Text.Json;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Runner;

/// <summary>How lab results and reports write values as words: one place for each format.</summary>
public static class LabText
{
    /// <summary>
    /// A call's result in reports, expect fields and JSON: "ok" for success, else the kernel's errno name as
    /// <see cref="ErrnoText.Format"/> writes it (EINVAL, ..., ERRNO_n for a number without a name).
    /// </summary>
    public static string Errno(Errno error) => error == Kernel.Kvm.Uapi.Errno.None ? "ok" : ErrnoText.Format(error);

    /// <summary>The inverse of <see cref="Errno(Kernel.Kvm.Uapi.Errno)"/>; false for text that is neither.</summary>
    public static bool TryParseErrno(string text, out Errno error)
    {
        if (text == "ok")
        {
            error = Kernel.Kvm.Uapi.Errno.None;
            return true;
        }

        return ErrnoText.TryParse(text, out error) && error != Kernel.Kvm.Uapi.Errno.None;
    }

    /// <summary>What tables and summaries print for a value that is not there (no mapping, no access completed).</summary>
    public const string None = "-";

    /// <summary>
    /// An enum member as one word, the way <c>--format json</c> writes enums (kebab-case): AccessOutcome.InstructionAbort is
    /// "instruction-abort", HazardKind.MismatchedAlias is "mismatched-alias".
    /// </summary>
    public static string Word<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());

    /// <summary>
    /// How a start step ended, as reports, JSON and expect steps name it: ok (every memslot was created), refused (the
    /// VMM declined before any memslot), failed (a KVM call failed).
    /// </summary>
    public static string Start(Vmm.StartOutcome outcome) => outcome == Vmm.StartOutcome.Started ? "ok" : Word(outcome);

    /// <summary>
    /// How setting up one region ended, as reports, JSON and expect steps (memslots.REGION) name it: ok (the memslot was
    /// created), refused (the VMM declined), skipped (not tried: the VM was refused), or the failed call's errno name.
    /// </summary>
    public static string Region(Vmm.RegionOutcome outcome, Errno error) => outcome switch
    {
        Vmm.RegionOutcome.Created => "ok",
        Vmm.RegionOutcome.Failed => Errno(error),
        _ => Word(outcome),
    };

    /// <summary>
    /// The words for KVM's stage-2 memory types (the prot type bits of kvm_pgtable_prot, before encoding) in reports,
    /// expect steps and JSON; null is "none", no mapping was written. One table: <see cref="Stage2(KvmS2MemType?)"/>,
    /// <see cref="Stage2Words"/> and <see cref="Stage2Word"/> read it.
    /// </summary>
    private static readonly (KvmS2MemType? Type, string Word)[] Stage2Table =
    [
        (KvmS2MemType.Normal, "normal"),
        (KvmS2MemType.NormalNc, "normal-nc"),
        (KvmS2MemType.DeviceNGnRE, "device-ngnre"),
        (null, "none"),

        // MT_S2_AS_S1 is pKVM's host stage 2; KVM never maps a guest with it, so expect steps do not offer the word.
        (KvmS2MemType.AsS1, "as-s1"),
    ];

    /// <summary>The stage-2 memory type as expect steps and reports name it: normal, normal-nc, device-ngnre, none (null).</summary>
    public static string Stage2(KvmS2MemType? type)
    {
        foreach (var (t, w) in Stage2Table)
        {
            if (t == type)
                return w;
        }

        throw new ArgumentOutOfRangeException(nameof(type), type, "a KvmS2MemType without a word");
    }

    /// <summary>The inverse of <see cref="Stage2(KvmS2MemType?)"/>; false for a word that is none of them.</summary>
    public static bool TryParseStage2(string word, out KvmS2MemType? type)
    {
        foreach (var (t, w) in Stage2Table)
        {
            if (w == word)
            {
                type = t;
                return true;
            }
        }

        type = null;
        return false;
    }

    /// <summary>The stage-2 types a guest's mapping can have, as expect steps accept them: normal, normal-nc, device-ngnre, none.</summary>
    public static readonly IReadOnlyList<string> Stage2Words = [.. Stage2Table.Where(x => x.Type != KvmS2MemType.AsS1).Select(x => x.Word)];

    /// <summary>The words of a scenario's access types (<c>type: [read, write, exec]</c>), in reports and JSON too.</summary>
    private static readonly (S2AccessKind Kind, string Word)[] AccessTable =
    [
        (S2AccessKind.Read, "read"),
        (S2AccessKind.Write, "write"),
        (S2AccessKind.Execute, "exec"),
    ];

    /// <summary>An access kind as scenarios, reports and JSON name it: read, write, exec.</summary>
    public static string Access(S2AccessKind kind)
    {
        foreach (var (k, w) in AccessTable)
        {
            if (k == kind)
                return w;
        }

        throw new ArgumentOutOfRangeException(nameof(kind), kind, "an S2AccessKind without a word");
    }

    /// <summary>Scenario words to access kinds: read, write, exec (the words <see cref="Access"/> writes).</summary>
    public static readonly IReadOnlyDictionary<string, S2AccessKind> AccessWords = AccessTable.ToDictionary(x => x.Word, x => x.Kind);

    /// <summary>A hazard's short name: mismatched-alias, impossible-maintenance, ram-as-device.</summary>
    public static string Hazard(Judging.HazardKind kind) => Word(kind);

    /// <summary>
    /// A short name for a memory type, as the guest sees it: Device-nGnRE, Normal-WB, Normal-NC, Normal-WT, and
    /// Normal-iWB-oNC when the halves differ; Normal-Tagged for MTE tagged memory.
    /// </summary>
    public static string MemoryType(MemoryAttributes a)
    {
        if (a.IsDevice)
            return $"Device-{a.DeviceType}";
        if (a.Tagged)
            return "Normal-Tagged";
        static string Half(CacheAttributes c) => c.Cacheability switch
        {
            Cacheability.WriteBack => "WB",
            Cacheability.WriteThrough => "WT",
            _ => "NC",
        };
        var (i, o) = (Half(a.Inner), Half(a.Outer));
        return i == o ? $"Normal-{o}" : $"Normal-i{i}-o{o}";
    }

    /// <summary>
    /// <see cref="MemoryType(MemoryAttributes)"/> of an access's effective type: its decoded attributes, else its
    /// PAR_EL1.ATTR byte decoded as MAIR (Arch's <see cref="Mair.Decode"/>, with FEAT_XS and FEAT_MTE2 so that XS and
    /// tagged forms read as what they are).
    /// </summary>
    public static string MemoryType(EffectiveMemoryType e) =>
        MemoryType(e.Attributes ?? Mair.Decode(e.ParAttr, AttributeFeatures.Xs | AttributeFeatures.Mte2).Attributes);
}
