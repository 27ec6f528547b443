namespace S2Lab.Kernel.Kvm.Uapi;

/// <summary>PROT_* bits of mmap/mprotect (the same values on x86_64 and arm64).</summary>
[Flags]
public enum Prot : uint
{
    PROT_NONE = 0,
    PROT_READ = 1,
    PROT_WRITE = 2,
    PROT_EXEC = 4,
}

/// <summary>A host virtual address in the VMM process.</summary>
public readonly record struct Hva(ulong Value)
{
    public static Hva operator +(Hva a, ulong offset) => new(a.Value + offset);

    public override string ToString() => $"0x{Value:x}";
}

/// <summary>
/// The VMM process's address space: what mmap(2) and friends offer userspace, nothing more. The model implements it
/// over its <c>MmStruct</c> and drivers; S2Lab.Linux implements it with the real system calls.
/// </summary>
public interface IHostAddressSpace
{
    /// <summary>mmap(MAP_PRIVATE|MAP_ANONYMOUS), THP allowed: the new mapping's start, or the errno.</summary>
    KvmResult<Hva> MapAnonymous(ulong size, Prot prot, string name);

    /// <summary>
    /// mmap(at, size, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED): anonymous memory at <paramref name="at"/>, replacing
    /// whatever was mapped there (replay files name their addresses). EINVAL for an unaligned address or an empty length.
    /// </summary>
    KvmResult<Hva> MapAnonymousFixed(Hva at, ulong size, Prot prot, string name);

    /// <summary>
    /// mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_*): hugetlbfs memory with <paramref name="hugePageSize"/>
    /// pages. MAP_ANONYMOUS matters on arm64: it gives the mapping VM_MTE_ALLOWED on an MTE host in every release the
    /// designs model, where a hugetlbfs file gets it only from 6.13 (rule 6).
    /// </summary>
    KvmResult<Hva> MapHugetlb(ulong size, ulong hugePageSize, Prot prot, string name);

    /// <summary>mmap of region <paramref name="region"/> of an opened vfio device at the region's offset.</summary>
    KvmResult<Hva> MapDeviceRegion(VfioDevice device, in VfioRegionInfo region, Prot prot);

    /// <summary>
    /// mmap(at, size, prot, MAP_SHARED|MAP_FIXED, open(path, O_RDWR), 0): the file's driver decides the mapping
    /// (its mmap handler). ENOENT for a path that does not exist; the driver's errno otherwise.
    /// </summary>
    KvmResult<Hva> MapFileFixed(string path, Hva at, ulong size, Prot prot);

    /// <summary>munmap(2).</summary>
    Errno Unmap(Hva start, ulong size);

    /// <summary>mprotect(2).</summary>
    Errno Protect(Hva start, ulong size, Prot prot);

    /// <summary>mincore(2): one byte per page of [start, start+size), bit 0 set when resident; ENOMEM over a hole.</summary>
    Errno Residency(Hva start, ulong size, Span<byte> vector);

    /// <summary>A load by the VMM through its own mapping (EFAULT where nothing is mapped or PROT_READ is missing).</summary>
    Errno Read(Hva address, Span<byte> destination);

    /// <summary>A store by the VMM through its own mapping (EFAULT where nothing is mapped or PROT_WRITE is missing).</summary>
    Errno Write(Hva address, ReadOnlySpan<byte> source);
}

/// <summary>
/// An optional speed-up a model address space may offer: where data can be. Real userspace has no such call; a VMM
/// that uses it must get the same result as one that reads every page (a property test holds the model to that).
/// </summary>
public interface ISparseAddressSpace
{
    /// <summary>
    /// Appends the byte offsets (from <paramref name="start"/>, page-aligned, ascending) of the pages of
    /// [start, start+size) that may hold non-zero bytes; every other page reads as zeros. Fails (EFAULT) exactly where
    /// reading the range would.
    /// </summary>
    Errno PagesThatMayHoldData(Hva start, ulong size, List<ulong> pageOffsets);
}

/// <summary>VFIO as userspace sees it: VFIO_DEVICE_GET_INFO and VFIO_DEVICE_GET_REGION_INFO.</summary>
public interface IVfioHost
{
    /// <summary>Opens a device by name; ENODEV when the host has no such device.</summary>
    KvmResult<VfioDevice> Open(string name);
}

/// <summary>An opened vfio device: its driver (vfio-pci, nvgrace-gpu-vfio-pci, ...) and its regions.</summary>
public sealed record VfioDevice(string Name, string Driver, IReadOnlyList<VfioRegionInfo> Regions)
{
    /// <summary>The region with index <paramref name="index"/>, if the device has it (indexes may have gaps).</summary>
    public VfioRegionInfo? Region(uint index)
    {
        foreach (var r in Regions)
        {
            if (r.Index == index)
                return r;
        }

        return null;
    }
}

/// <summary>struct vfio_region_info: index (BAR0..5 = 0..5), size, offset into the device fd, flags.</summary>
public readonly record struct VfioRegionInfo(uint Index, ulong Size, ulong Offset, VfioRegionFlags Flags);

/// <summary>VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP with their uAPI values.</summary>
[Flags]
public enum VfioRegionFlags : uint
{
    None = 0,
    Read = 1,
    Write = 2,
    Mmap = 4,
}

/// <summary>What a guest op does.</summary>
public enum GuestOpKind
{
    /// <summary>An 8-byte load from <see cref="GuestOp.Ipa"/>.</summary>
    Load,

    /// <summary>An 8-byte store of <see cref="GuestOp.Value"/> to <see cref="GuestOp.Ipa"/>.</summary>
    Store,

    /// <summary>An instruction fetch from <see cref="GuestOp.Ipa"/> (arm64 model only; EINVAL on x86_64).</summary>
    Fetch,
}

/// <summary>
/// One guest op: what a guest access is through the seams. <paramref name="Mair"/> is the stage-1 attribute the
/// guest's page tables give the address (a MAIR_EL1 byte; 0xFF, Normal inner and outer write-back, is how a guest maps
/// its RAM). A real x86_64 guest in real mode has no stage-1 attribute: its loader refuses any other value (EINVAL).
/// </summary>
/// <param name="Mair">The stage-1 memory attribute (MAIR byte) the arm64 guest uses for <paramref name="Ipa"/>.</param>
public readonly record struct GuestOp(GuestOpKind Kind, ulong Ipa, ulong Value = 0, byte Mair = 0xFF)
{
    public static GuestOp Load(ulong ipa, byte mair = 0xFF) => new(GuestOpKind.Load, ipa, 0, mair);

    public static GuestOp Store(ulong ipa, ulong value, byte mair = 0xFF) => new(GuestOpKind.Store, ipa, value, mair);

    public static GuestOp Fetch(ulong ipa, byte mair = 0xFF) => new(GuestOpKind.Fetch, ipa, 0, mair);
}

/// <summary>
/// SCTLR_EL1's MMU and cache enables, with their bit positions in the register (Arm DDI 0487, SCTLR_EL1: M is bit 0,
/// C bit 2, I bit 12). Off, M makes the guest's data accesses Device-nGnRnE and C its Normal data accesses
/// Non-cacheable; I off makes instruction fetches Non-cacheable (D8.2.11).
/// </summary>
[Flags]
public enum SctlrEl1 : ulong
{
    None = 0,

    /// <summary>SCTLR_EL1.M: the stage-1 MMU.</summary>
    M = 1UL << 0,

    /// <summary>SCTLR_EL1.C: data caching.</summary>
    C = 1UL << 2,

    /// <summary>SCTLR_EL1.I: instruction caching.</summary>
    I = 1UL << 12,

    /// <summary>A booted guest: MMU and both caches on.</summary>
    Enabled = M | C | I,
}

/// <summary>
/// What a guest does, as data: the model enqueues it, a real backend assembles it into code ending in a halt. A
/// scenario's guest access is a program of one op (docs/architecture.md, "the guest-access seam").
/// </summary>
/// <param name="Ops">The loads, stores and fetches, in program order.</param>
public sealed record GuestProgram(IReadOnlyList<GuestOp> Ops)
{
    /// <summary>
    /// SCTLR_EL1.M/C/I as the program sets them before its first op (on arm64, an MSR SCTLR_EL1 and an ISB at the
    /// start of the code). Null: the program leaves them as the vCPU has them. It is an arm64 register: a real
    /// x86_64 loader refuses a program that sets it (EINVAL).
    /// </summary>
    public SctlrEl1? Sctlr { get; init; }

    /// <summary>A program of one access: <paramref name="op"/> with SCTLR_EL1 set to <paramref name="sctlr"/> first.</summary>
    public static GuestProgram Access(GuestOp op, SctlrEl1? sctlr = null) => new([op]) { Sctlr = sctlr };
}

/// <summary>Loads guest code and initialises vCPUs; the caller then runs the vCPU with KVM_RUN until it halts.</summary>
public interface IGuestLoader
{
    /// <summary>
    /// Writes <paramref name="program"/> as code into the page at <paramref name="codeIpa"/> (mapped by the VMM at
    /// <paramref name="codeHva"/>) and points the vCPU there. EINVAL for an op the architecture's loader cannot express
    /// (a fetch, a stage-1 attribute or an SCTLR_EL1 setting the real guest cannot give; see the loader).
    /// </summary>
    Errno Load(IKvmVcpu vcpu, Hva codeHva, ulong codeIpa, GuestProgram program);

    /// <summary>
    /// The exit with which KVM_RUN reports that a loaded program has ended: <see cref="KvmExitReason.Hlt"/> on x86_64
    /// (HLT) and in the model, <see cref="KvmExitReason.SystemEvent"/> on arm64 (PSCI SYSTEM_OFF).
    /// </summary>
    KvmExitReason EndExit { get; }

    /// <summary>The values the loads of the last program returned, in program order, once it has run.</summary>
    IReadOnlyList<ulong> LoadedValues(IKvmVcpu vcpu);
}
