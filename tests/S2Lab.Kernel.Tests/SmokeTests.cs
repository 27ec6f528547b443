using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Tests.Support;

namespace S2Lab.Kernel.Tests;

public class SmokeTests
{
    [Fact]
    public void Gh200_on_grace_617_maps_usemem_normal_and_data_reads_back()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var gpu = rig.AddGh200();
        var ram = rig.Anon(64 * Rig.MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0x4000_0000, ram));
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, 0x40_0000_0000, use));
        var w = rig.Write(0x4000_1000, 0x1122334455667788);
        Assert.Equal(GuestAccessOutcome.Completed, w.Outcome);
        var r = rig.Read(0x4000_1000);
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(r.Data));
        var u = rig.Write(0x40_0000_0000, 42);
        Assert.Equal(GuestAccessOutcome.Completed, u.Outcome);
        Assert.Equal(KvmS2MemType.Normal, u.Leaf!.Value.MemType);
        Assert.Equal(Rig.GiB, u.Leaf!.Value.Size);
    }
}
