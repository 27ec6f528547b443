using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
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
