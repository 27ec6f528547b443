using S2Lab.Arch.Translation;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Replay;

/// <summary>
/// The model side of mmap, vcpu and access replay lines, shaped like the arm64 oracle's guest (oracle/arm64): the
/// VMM's mappings are those of the probe, and the module's kinds map a range of RAM the host kernel does not own
/// (booted with mem=), which the model holds as memory outside the linear map.
/// </summary>
public sealed class ModelReplayMachine : IReplayMachine
{
    /// <summary>Where the oracle guest's carved RAM starts: QEMU virt RAM at 1 GiB, the kernel told mem=768M.</summary>
    public const ulong CarvedBase = 0x7000_0000;

    /// <summary>The carved RAM's size (the last 256 MiB of the guest's 1 GiB).</summary>
    public const ulong CarvedSize = 0x1000_0000;

    /// <summary>The mask of the attribute bits a leaf is compared by: MemAttr[5:2] S2AP[7:6] SH[9:8] AF[10] XN[54:53].</summary>
    public const ulong LeafAttributeMask = 0x0060_0000_0000_07FC;

    private readonly ModelKvmSystem _kvm;
    private readonly PhysRegion _carved;
    private readonly Dictionary<IKvmVm, ModelKvmVcpu> _vcpus = new(ReferenceEqualityComparer.Instance);

    /// <summary>A machine over <paramref name="kvm"/>'s process; adds the carved RAM to its host's memory map.</summary>
    public ModelReplayMachine(ModelKvmSystem kvm)
    {
        _kvm = kvm;
        var mem = kvm.Host.Memory;
        _carved = mem.Regions.FirstOrDefault(r => r.Base == CarvedBase && r.Size == CarvedSize)
                  ?? mem.AddDeviceRegion("carved RAM (mem=)", CarvedSize, PhysRegionKind.DeviceMemory, CarvedBase);
    }

    private MmStruct Mm => _kvm.Process.Mm;

    public Errno Mmap(MmapOp op)
    {
        const Prot rw = Prot.PROT_READ | Prot.PROT_WRITE;
        if (op.Kind is ReplayVmaKind.Anon or ReplayVmaKind.AnonRo)
        {
            var anon = AnonymousMemory.Mmap(_kvm.Process, op.Size, rw, op.UserspaceAddr, thp: false);
            if (!anon.IsOk)
                return anon.Error;
            return op.Kind == ReplayVmaKind.AnonRo ? Mm.Mprotect(op.UserspaceAddr, op.Size, Prot.PROT_READ) : Errno.None;
        }
        // The module's mmap handler: the range must lie inside the carved RAM.
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

    public Errno Munmap(MunmapOp op) => Mm.Munmap(op.UserspaceAddr, op.Size);

    /// <summary>KVM_CAP_ARM_MTE is the one capability the model enables; any other is EINVAL, as for an unknown cap.</summary>
    public Errno EnableCap(IKvmVm vm, uint cap) =>
        cap == KvmCap.ARM_MTE && vm is ModelKvmVm model ? model.EnableMte() : Errno.EINVAL;

    public Errno CreateVcpu(IKvmVm vm, VcpuOp op)
    {
        var code = AnonymousMemory.Mmap(_kvm.Process, PAGE_SIZE, Prot.PROT_READ | Prot.PROT_WRITE, op.UserspaceAddr, thp: false);
        if (!code.IsOk)
            return code.Error;
        var set = vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(op.Slot, 0, op.GuestPhysAddr, PAGE_SIZE, op.UserspaceAddr));
        if (set != Errno.None)
            return set;
        var vcpu = vm.CreateVcpu(0);
        if (!vcpu.IsOk)
            return vcpu.Error;
        _vcpus[vm] = (ModelKvmVcpu)vcpu.Value;
        return Errno.None;
    }

    public (Errno Result, string? Exit, string? Leaf) Access(IKvmVm vm, AccessOp op)
    {
        if (!_vcpus.TryGetValue(vm, out var vcpu))
            return (Errno.EBADF, null, null);
        // Stage 1 is off in the oracle's guest: data accesses are Device-nGnRnE, instruction fetches Normal.
        var request = op.Kind switch
        {
            S2AccessKind.Read => GuestAccessRequest.Read(op.GuestPhysAddr, 0x00),
            S2AccessKind.Write => GuestAccessRequest.Write(op.GuestPhysAddr, 0x00, 0xf900007ff900007fUL),
            _ => GuestAccessRequest.Exec(op.GuestPhysAddr, 0xFF),
        };
        var r = vcpu.Access(request);
        var leaf = FormatLeaf(vcpu.Vm.Stage2.GetLeaf(op.GuestPhysAddr));
        return r.Outcome switch
        {
            GuestAccessOutcome.Completed => (Errno.None, "done", leaf),
            GuestAccessOutcome.MmioExit => (Errno.None, "mmio", leaf),
            GuestAccessOutcome.AbortInjected => (Errno.None, "abort", leaf),
            _ => (r.RunError, null, leaf),
        };
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
