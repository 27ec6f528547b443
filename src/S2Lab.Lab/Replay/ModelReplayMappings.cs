using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Runner;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Replay;

/// <summary>
/// The model side of a replay's special lines, shaped like the arm64 oracle's (oracle/arm64): the module's mmap kinds
/// map a range of RAM the host kernel does not own (booted with mem=), which the model holds as memory outside the
/// linear map; and what the oracle's probe reads besides KVM_RUN's return (an abort the guest took, the stage-2 leaf)
/// comes from the kernel events (<see cref="KernelEventLog"/>), not from a table walk.
/// </summary>
public sealed class ModelReplayMappings : IReplayMappings
{
    /// <summary>Where the oracle guest's carved RAM starts: QEMU virt RAM at 1 GiB, the kernel told mem=768M.</summary>
    public const ulong CarvedBase = 0x7000_0000;

    /// <summary>The carved RAM's size (the last 256 MiB of the guest's 1 GiB).</summary>
    public const ulong CarvedSize = 0x1000_0000;

    /// <summary>The mask of the attribute bits a leaf is compared by: MemAttr[5:2] S2AP[7:6] SH[9:8] AF[10] XN[54:53].</summary>
    public const ulong LeafAttributeMask = 0x0060_0000_0000_07FC;

    private readonly ModelKvmSystem _kvm;
    private readonly PhysRegion _carved;
    private readonly KernelEventLog _log;

    /// <summary>The mappings of <paramref name="kvm"/>'s process; adds the carved RAM to its host's memory map and observes the kvm.</summary>
    public ModelReplayMappings(ModelKvmSystem kvm)
    {
        _kvm = kvm;
        var mem = kvm.Host.Memory;
        _carved = mem.Regions.FirstOrDefault(r => r.Base == CarvedBase && r.Size == CarvedSize)
                  ?? mem.AddDeviceRegion("carved RAM (mem=)", CarvedSize, PhysRegionKind.DeviceMemory, CarvedBase);
        _log = KernelEventLog.Of(kvm);
    }

    /// <summary>
    /// The seams a replay on <paramref name="kvm"/> runs through: the VMM process's address space (its host without
    /// transparent huge pages, as the oracle's kernel is built), the model guest loader, and these mappings.
    /// </summary>
    public static ReplayHost Host(ModelKvmSystem kvm) =>
        new(new ModelAddressSpace(kvm.Process) { TransparentHugepages = false }, new ModelGuestLoader(), new ModelReplayMappings(kvm));

    private MmStruct Mm => _kvm.Process.Mm;

    /// <summary>The module's mmap handler: the range must lie inside the carved RAM.</summary>
    public Errno Map(MmapOp op)
    {
        const Prot rw = Prot.PROT_READ | Prot.PROT_WRITE;
        if (op.Kind is ReplayVmaKind.Anon or ReplayVmaKind.AnonRo)
            return Errno.EINVAL; // anonymous memory is the address space's (IHostAddressSpace), not the module's
        if (op.Size == 0 || !IsAligned(op.UserspaceAddr, PAGE_SIZE) || !IsAligned(op.Offset, PAGE_SIZE))
            return Errno.EINVAL;
        var len = AlignUp(op.Size, PAGE_SIZE);
        if (op.Offset >= CarvedSize || len > CarvedSize - op.Offset)
            return Errno.EINVAL;
        var pa = _carved.Base + op.Offset;
        var shared = VmFlagsExtensions.FromProt(rw) | VmFlags.VM_SHARED | VmFlags.VM_MAYSHARE | VmFlags.VM_MAYREAD | VmFlags.VM_MAYWRITE;
        var pfnmap = shared | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        var mixed = shared | VmFlags.VM_MIXEDMAP | VmFlags.VM_DONTEXPAND | VmFlags.VM_DONTDUMP;
        var name = ReplayNames.Name(op.Kind);
        var r = op.Kind switch
        {
            ReplayVmaKind.PfnmapWb => Pfnmap(MtIndex.MT_NORMAL, VmFlags.VM_NONE),
            ReplayVmaKind.PfnmapWcAny => Pfnmap(MtIndex.MT_NORMAL_NC, VmFlags.VM_ALLOW_ANY_UNCACHED),
            ReplayVmaKind.PfnmapNc => Pfnmap(MtIndex.MT_DEVICE_nGnRnE, VmFlags.VM_NONE),
            ReplayVmaKind.PfnmapWc => Pfnmap(MtIndex.MT_NORMAL_NC, VmFlags.VM_NONE),
            ReplayVmaKind.MixedmapIoWb => Mm.InsertVma(len, mixed | VmFlags.VM_IO, PgProt.Default, op.Offset >> PAGE_SHIFT,
                new CarvedMixedBacking(_carved), name, op.UserspaceAddr),
            _ => Mm.InsertVma(len, mixed, PgProt.Default, op.Offset >> PAGE_SHIFT, new CarvedMixedBacking(_carved), name, op.UserspaceAddr),
        };
        return r.IsOk ? Errno.None : r.Error;

        KvmResult<Vma> Pfnmap(MtIndex index, VmFlags extra) =>
            Mm.InsertVma(len, pfnmap | extra, new PgProt(index), pa >> PAGE_SHIFT, new LinearPfnBacking(name), name, op.UserspaceAddr);
    }

    /// <summary>
    /// From the events since the last call, of which the access's come last: an abort KVM injected into the guest
    /// (<see cref="AccessEnded"/>), and the leaf at <paramref name="gpa"/> in the accessing VM as the events last showed
    /// it (<see cref="KernelEventLog.LeafAt"/>).
    /// </summary>
    public (bool Aborted, string? Leaf) AfterAccess(ulong gpa)
    {
        var events = _log.Take();
        var end = events.LastOrDefault(e => e is MemoryAccessed or AccessEnded);
        if (end is null)
            return (false, null);
        return (end is AccessEnded { Outcome: GuestAccessOutcome.AbortInjected }, FormatLeaf(_log.LeafAt(end.Vm, gpa)));
    }

    /// <summary>"none", or L&lt;level&gt;:0x&lt;descriptor &amp; <see cref="LeafAttributeMask"/>&gt; (the oracle probe's format).</summary>
    public static string FormatLeaf(Arch.Translation.S2Leaf? leaf) =>
        leaf is { } l ? $"L{l.Level}:0x{l.Descriptor.Raw & LeafAttributeMask:x}" : "none";

    /// <summary>vmf_insert_mixed() of the carved RAM: the pfn is the region's base plus vm_pgoff plus the page index.</summary>
    private sealed class CarvedMixedBacking(PhysRegion carved) : IVmaBacking
    {
        public string Kind => "carved RAM (vmf_insert_mixed)";

        public HostPte? Fault(Vma vma, ulong hva, bool write) => Lookup(vma, hva);

        public HostPte? Lookup(Vma vma, ulong hva)
        {
            var off = (vma.PgOff << PAGE_SHIFT) + (hva - vma.Start);
            return off < carved.Size ? new HostPte((carved.Base + off) >> PAGE_SHIFT, PAGE_SIZE, (vma.Flags & VmFlags.VM_WRITE) != 0) : null;
        }

        public void Release(Vma vma, ulong start, ulong end)
        {
        }
    }
}
