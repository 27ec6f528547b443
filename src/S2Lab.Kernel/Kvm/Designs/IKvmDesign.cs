using S2Lab.Arch.Attributes;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Kvm.Designs;

/// <summary>A Linux release, for behaviour that changed between versions (e.g. guest_memfd on arm64 from 6.18).</summary>
public readonly record struct KernelVersion(int Major, int Minor) : IComparable<KernelVersion>
{
    public int CompareTo(KernelVersion other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;

    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;

    public override string ToString() => $"{Major}.{Minor}";
}

/// <summary>A decision of a design (or of KVM's generic code): its outcome, the rule behind it (docs/rules.md), and why.</summary>
/// <param name="Error">The errno, or <see cref="Errno.None"/>.</param>
/// <param name="Rule">The rule number in docs/rules.md (0 when no numbered rule applies).</param>
/// <param name="Reason">One sentence a hypervisor engineer can read.</param>
public readonly record struct DesignVerdict(Errno Error, int Rule, string Reason)
{
    public bool IsOk => Error == Errno.None;

    public static DesignVerdict Ok(int rule, string reason) => new(Errno.None, rule, reason);

    public static DesignVerdict Fail(Errno error, int rule, string reason) => new(error, rule, reason);
}

/// <summary>What the arm64 memslot preparation (rule 6) knows about one VMA of the slot.</summary>
/// <param name="Cpu">The host CPU (FWB, DIC).</param>
/// <param name="Vma">The VMA overlapping the slot's host range.</param>
/// <param name="NewFlags">The memslot's new flags.</param>
public readonly record struct PrepareVmaContext(CpuModel Cpu, Vma Vma, KvmMemFlags NewFlags);

/// <summary>What user_mem_abort() knows when it picks the stage-2 memory type (rules 8-11, 18).</summary>
/// <param name="Cpu">The host CPU.</param>
/// <param name="VmaFlags">vm_flags sampled under mmap_read_lock.</param>
/// <param name="VmaCacheable">Rule 3 on the VMA's pgprot.</param>
/// <param name="PfnIsMapMemory">pfn_is_map_memory(pfn): the page is in the kernel's linear map.</param>
/// <param name="SlotFlags">The memslot's flags.</param>
public readonly record struct FaultTypeContext(CpuModel Cpu, VmFlags VmaFlags, bool VmaCacheable, bool PfnIsMapMemory, KvmMemFlags SlotFlags)
{
    /// <summary>The "special" case of section D: a PFNMAP/MIXEDMAP VMA and a pfn outside map memory.</summary>
    public bool IsSpecial => VmaFlags.IsPfnmapOrMixed() && !PfnIsMapMemory;

    public bool AllowAnyUncached => (VmaFlags & VmFlags.VM_ALLOW_ANY_UNCACHED) != 0;
}

/// <summary>The stage-2 memory type a design picked at fault time, or the errno the fault fails with.</summary>
/// <param name="Type">The type when <see cref="Error"/> is <see cref="Errno.None"/>.</param>
/// <param name="ForceNonCacheable">user_mem_abort's s2_force_noncacheable: no exec (rule 12), Device or Normal-NC prot; it does not stop the host-leaf step (rules 15 and 17, 6.12.113+ and 7.x).</param>
public readonly record struct Stage2TypeDecision(KvmS2MemType Type, bool ForceNonCacheable, Errno Error, int Rule, string Reason)
{
    public bool IsOk => Error == Errno.None;

    public static Stage2TypeDecision Map(KvmS2MemType type, int rule, string reason) =>
        new(type, type != KvmS2MemType.Normal, Errno.None, rule, reason);

    public static Stage2TypeDecision Fail(Errno error, int rule, string reason) =>
        new(KvmS2MemType.Normal, false, error, rule, reason);
}

/// <summary>
/// One kernel behaviour or proposal of docs/designs.md. Every design-specific decision of KVM goes through this
/// interface; the generic memslot and fault code asks it and never tests a design's name. Register a new design by
/// adding a class with <see cref="KvmDesignAttribute"/>; nothing else changes.
/// </summary>
public interface IKvmDesign
{
    /// <summary>The registry name ("linux-6.17", "proposal-module-param=on", ...).</summary>
    string Name { get; }

    /// <summary>One line: what the design is.</summary>
    string Summary { get; }

    /// <summary>The release whose generic KVM behaviour the design runs with (guest_memfd on arm64 needs 6.18).</summary>
    KernelVersion BaseVersion { get; }

    /// <summary>KVM_CHECK_EXTENSION(243) (rule 2): on the system fd when <paramref name="onVmFd"/> is false.</summary>
    KvmResult<long> CacheablePfnmapCapability(CpuModel cpu, bool onVmFd);

    /// <summary>Memslot flags beyond the generic set that check_memory_region_flags() accepts on this host (rule 21).</summary>
    KvmMemFlags ExtraMemslotFlags(CpuModel cpu);

    /// <summary>
    /// The design's part of the arm64 per-VMA memslot check (rule 6, after the MTE and PFNMAP+LOG_DIRTY checks).
    /// <see cref="DesignVerdict.Ok"/> when the VMA passes.
    /// </summary>
    DesignVerdict PrepareVma(in PrepareVmaContext ctx);

    /// <summary>The fault-time stage-2 type (rules 8-11, 18), or -EFAULT.</summary>
    Stage2TypeDecision DecideStage2Type(in FaultTypeContext ctx);
}

/// <summary>Marks a design class for <see cref="KvmDesigns"/>. The class needs a constructor taking a nullable string argument or none.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class KvmDesignAttribute(string name, int order) : Attribute
{
    public string Name { get; } = name;

    /// <summary>Position in <see cref="KvmDesigns.All"/>.</summary>
    public int Order { get; } = order;

    /// <summary>
    /// The argument values the design accepts after '=' (<c>proposal-module-param=on</c>), in the order tools explore
    /// them; empty for a design without an argument.
    /// </summary>
    public string[] Arguments { get; set; } = [];

    /// <summary>
    /// The memslot flags the design's uAPI adds to KVM_SET_USER_MEMORY_REGION2 (e.g.
    /// <see cref="KvmMemFlags.ENABLE_CACHEABLE_PFNMAP"/>): what a VMM built for the design may pass. Whether a given host
    /// accepts them is <see cref="IKvmDesign.ExtraMemslotFlags"/>, which never returns a flag not declared here.
    /// </summary>
    public KvmMemFlags ExtraMemslotFlags { get; set; }
}
