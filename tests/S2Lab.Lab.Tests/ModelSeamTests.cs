using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>The model's side of the host and guest seams, as the VMM uses them.</summary>
public class ModelSeamTests
{
    private static readonly VmConfig Ram = new("vm", 40, 1, [new RegionConfig("ram", 0x4000_0000, 2UL << 20, false, new AnonymousRam())]);

    [Fact]
    public void The_model_guest_loader_runs_a_program_on_KVM_RUN_and_returns_its_loads_in_order()
    {
        var h = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = h.CreateProcess("vmm");
        var vmm = ModelVmm.Host("h", p, h.OpenKvm(p));
        var vm = Vmm.Vmm.Start(vmm, Ram, VmmPolicy.TrustKernel).Vm!;
        var code = new Hva(vm.Region("ram").Hva);
        var program = new GuestProgram([GuestOp.Store(0x4000_2000, 0x1234), GuestOp.Load(0x4000_3000), GuestOp.Load(0x4000_2000)]);
        Assert.Equal(Errno.None, vmm.Guest.Load(vm.Vcpus[0], code, 0x4000_0000, program));
        Assert.Empty(vmm.Guest.LoadedValues(vm.Vcpus[0])); // nothing has run yet
        var exit = vm.Vcpus[0].Run();
        Assert.Equal(vmm.Guest.EndExit, exit.Value.Reason);
        Assert.Equal([0UL, 0x1234UL], vmm.Guest.LoadedValues(vm.Vcpus[0]));
        var stored = new byte[8];
        Assert.Equal(Errno.None, vmm.Memory.Read(new Hva(vm.Region("ram").Hva + 0x2000), stored));
        Assert.Equal(0x1234UL, BitConverter.ToUInt64(stored)); // the VMM sees the guest's store through its mapping
    }

    [Fact]
    public void A_program_longer_than_the_vcpu_history_is_EINVAL()
    {
        var h = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = h.CreateProcess("vmm");
        var vmm = ModelVmm.Host("h", p, h.OpenKvm(p));
        var vm = Vmm.Vmm.Start(vmm, Ram, VmmPolicy.TrustKernel).Vm!;
        var ops = Enumerable.Range(0, Kernel.Kvm.ModelKvmVcpu.HistoryCapacity + 1).Select(i => GuestOp.Load(0x4000_0000 + ((ulong)i * 8))).ToList();
        Assert.Equal(Errno.EINVAL, vmm.Guest.Load(vm.Vcpus[0], new Hva(vm.Region("ram").Hva), 0x4000_0000, new GuestProgram(ops)));
    }

    /// <summary>A started VM of 2 MiB of RAM at 1 GiB on a <paramref name="cpu"/> host running <paramref name="design"/>, its VMM, and the /dev/kvm's events.</summary>
    private static (VirtualMachine Vm, VmmHost Vmm, KernelEventList Events) Started(string cpu = "neoverse-v2", string design = "linux-6.17")
    {
        var h = Host.Create("h", cpu, design);
        var p = h.CreateProcess("vmm");
        var kvm = h.OpenKvm(p);
        var events = new KernelEventList();
        kvm.Observer = events;
        var vmm = ModelVmm.Host("h", p, kvm);
        return (Vmm.Vmm.Start(vmm, Ram, VmmPolicy.TrustKernel).Vm!, vmm, events);
    }

    /// <summary>Loads a one-op access program (the guest-access seam) on vCPU 0 and runs it with KVM_RUN.</summary>
    private static KvmResult<KvmExit> Access(VirtualMachine vm, GuestOp op, SctlrEl1? sctlr = SctlrEl1.Enabled)
    {
        var code = vm.Region("ram");
        Assert.Equal(Errno.None, vm.Host.Guest.Load(vm.Vcpus[0], new Hva(code.Hva), code.Config.Gpa, GuestProgram.Access(op, sctlr)));
        return vm.Vcpus[0].Run();
    }

    [Fact]
    public void A_write_then_a_read_through_the_guest_access_seam_returns_the_bytes_in_the_loaded_values_and_the_event()
    {
        var (vm, vmm, events) = Started();
        Assert.Equal(vmm.Guest.EndExit, Access(vm, GuestOp.Store(0x4000_1008, 0x0123_4567_89AB_CDEF)).Value.Reason);
        events.Clear();
        Assert.Equal(vmm.Guest.EndExit, Access(vm, GuestOp.Load(0x4000_1008)).Value.Reason);
        Assert.Equal([0x0123_4567_89AB_CDEFUL], vmm.Guest.LoadedValues(vm.Vcpus[0]));
        // The kernel's event for the read carries the same bytes, the route through the caches and the effective type.
        var read = Assert.Single(events.Events.OfType<MemoryAccessed>());
        Assert.Equal(S2AccessKind.Read, read.Access);
        Assert.Equal(0x4000_1008UL, read.Ipa);
        Assert.Equal(0x0123_4567_89AB_CDEFUL, BitConverter.ToUInt64(read.Bytes.Span));
        Assert.Equal(AccessPath.DataCacheHit, read.Path); // the write left the line in the data cache
        Assert.True(read.Effective!.Value.Attributes.IsWriteBack);
        Assert.Empty(events.Events.OfType<AccessEnded>());
    }

    [Fact]
    public void The_programs_SCTLR_EL1_is_the_vcpus_until_a_program_sets_another()
    {
        // Without FWB (with FWB, stage 2's MemAttr 0b110 would force write-back whatever stage 1 gives).
        var (vm, _, events) = Started("neoverse-n1", "linux-6.9");
        // D8.2.11: with SCTLR_EL1.M clear, a data access is Device-nGnRnE whatever the stage-1 attribute says.
        Access(vm, GuestOp.Load(0x4000_0000), SctlrEl1.None);
        Access(vm, GuestOp.Load(0x4000_0000), sctlr: null); // leaves SCTLR_EL1 as the vCPU has it
        Access(vm, GuestOp.Load(0x4000_0000), SctlrEl1.Enabled);
        var seen = events.Events.OfType<MemoryAccessed>().Select(a => a.Effective!.Value.Attributes).ToList();
        Assert.Equal(3, seen.Count);
        Assert.True(seen[0].IsDevice);
        Assert.True(seen[1].IsDevice);
        Assert.True(seen[2].IsWriteBack);
    }

    /// <summary>
    /// Issue 12 through the seam: the guest maps a RAM page (its first read faults it in; without FWB, KVM cleans the
    /// new cacheable page to the PoC, see property 5), the VMM then stores through its cacheable mapping (a dirty line), and
    /// the guest reads the same bytes with a Non-cacheable stage-1 attribute (MAIR 0x44) or with SCTLR_EL1.C clear.
    /// Without FWB (neoverse-n1, linux-6.9) stage 2 is Normal and the combine keeps the guest's Non-cacheable, so the
    /// read goes around the cache and sees the PoC's old zeros (B2.11 mismatched attributes, D7.5.1). With FWB
    /// (neoverse-v2, linux-6.17) MemAttr 0b110 forces write-back and the read sees the store.
    /// </summary>
    [Theory]
    [InlineData("neoverse-n1", "linux-6.9", (byte)0x44, SctlrEl1.Enabled, true)]
    [InlineData("neoverse-n1", "linux-6.9", (byte)0xFF, SctlrEl1.M | SctlrEl1.I, true)]
    [InlineData("neoverse-n1", "linux-6.9", (byte)0xFF, SctlrEl1.Enabled, false)]
    [InlineData("neoverse-v2", "linux-6.17", (byte)0x44, SctlrEl1.Enabled, false)]
    public void A_non_cacheable_guest_read_around_the_VMMs_dirty_line_is_stale_without_FWB(string cpu, string design, byte mair, SctlrEl1 sctlr, bool stale)
    {
        const ulong value = 0xA5A5_5A5A_0F0F_F0F0;
        var (vm, vmm, events) = Started(cpu, design);
        Assert.Equal(vmm.Guest.EndExit, Access(vm, GuestOp.Load(0x4000_3000)).Value.Reason);
        Assert.Equal([0UL], vmm.Guest.LoadedValues(vm.Vcpus[0]));
        Assert.Equal(Errno.None, vmm.Memory.Write(new Hva(vm.Region("ram").Hva + 0x3000), BitConverter.GetBytes(value)));
        events.Clear();
        Assert.Equal(vmm.Guest.EndExit, Access(vm, GuestOp.Load(0x4000_3000, mair), sctlr).Value.Reason);
        var read = Assert.Single(events.Events.OfType<MemoryAccessed>());
        Assert.Equal(stale ? [0UL] : [value], vmm.Guest.LoadedValues(vm.Vcpus[0]));
        Assert.Equal(stale ? AccessPath.Bypass : AccessPath.DataCacheHit, read.Path);
        Assert.Equal(stale, read.Effective!.Value.IsNonCacheable);
    }

    [Fact]
    public void An_access_outside_every_memslot_ends_in_an_MMIO_exit_and_an_AccessEnded_event()
    {
        var (vm, _, events) = Started();
        var exit = Access(vm, GuestOp.Store(0x8000_0000, 1));
        Assert.Equal(KvmExitReason.Mmio, exit.Value.Reason);
        var ended = Assert.Single(events.Events.OfType<AccessEnded>());
        Assert.Equal(GuestAccessOutcome.MmioExit, ended.Outcome);
        Assert.Empty(events.Events.OfType<MemoryAccessed>());
    }

    [Fact]
    public void Vfio_reports_regions_by_index_with_the_vfio_pci_offset_and_ENODEV_for_a_missing_device()
    {
        var h = Host.Create("h", "neoverse-v2", "linux-6.17");
        var gpu = new NvGraceGpu(h, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GB200, 64UL << 20, MemblkSize: 64UL << 20));
        var vfio = new ModelVfioHost()
            .Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, NvGraceGpu.UsememRegionIndex, gpu.Usemem.Size, p => gpu.MmapUsemem(p))
            .Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, 0, 16UL << 20, p => gpu.MmapBar0(p));
        Assert.Equal(Errno.ENODEV, vfio.Open("gpu1").Error);
        var dev = vfio.Open("gpu0").Value;
        Assert.Equal([0u, 4u], dev.Regions.Select(r => r.Index));
        Assert.Equal(4UL << 40, dev.Region(4)!.Value.Offset); // VFIO_PCI_INDEX_TO_OFFSET
        Assert.Null(dev.Region(2));
        Assert.Equal(DeviceRegionRole.CacheableMemory, DeviceMemoryPolicy.Role(dev, dev.Region(4)!.Value));
        Assert.Equal(DeviceRegionRole.Registers, DeviceMemoryPolicy.Role(dev, dev.Region(0)!.Value));
        // Another host's address space did not open this device: it cannot map it.
        var other = new ModelAddressSpace(h.CreateProcess("other"));
        Assert.Equal(Errno.ENODEV, other.MapDeviceRegion(dev, dev.Region(4)!.Value, Prot.PROT_READ | Prot.PROT_WRITE).Error);
        var mine = new ModelAddressSpace(h.CreateProcess("vmm"), vfio);
        var ro = mine.MapDeviceRegion(dev, dev.Region(4)!.Value, Prot.PROT_READ).Value;
        Assert.Equal(Errno.EFAULT, mine.Write(ro, [1])); // mapped read-only as asked
        Assert.Equal(Errno.None, mine.Read(ro, new byte[1]));
    }
}
