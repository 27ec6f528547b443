using CsCheck;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>
/// Issue 12: data moves through the host's caches (Arch/Caches). The thread's two cases, with the byte the guest reads
/// and the byte it should read (the last write anyone made, kept by the test in a shadow memory, not by the kernel).
/// The expected stale byte follows from the Arm rules: a Non-cacheable or Device access neither looks up nor updates a
/// line a cacheable alias holds (D7.5.1, B2.11 mismatched attributes); with SCTLR_EL1.M=0 a data access is
/// Device-nGnRnE (D8.2.11 via the combine), so it reads the PoC; KVM's clean to PoC needs a kernel VA (rule 14).
/// </summary>
public class CacheDataTests
{
    private const ulong RamIpa = 0x4000_0000;
    private const ulong UseIpa = 0x40_0000_0000;
    private const byte HostByte = 0xA5;
    private const byte PocByte = 0x00; // never written at the PoC: the usemem reads as zeros there

    /// <summary>A rig with the GH200's usemem in slot 1 (the VMM's cacheable mapping is the host alias).</summary>
    private static (Rig Rig, Vma Use) WithUsemem(string cpu, string design)
    {
        var rig = new Rig(cpu, design);
        var gpu = rig.AddGh200();
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, use));
        return (rig, use);
    }

    private static byte GuestReadByte(Rig rig, ulong ipa, byte mair = 0xFF)
    {
        var r = rig.Vcpu.Access(GuestAccessRequest.Read(ipa, mair, 1));
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        return r.Data![0];
    }

    [Fact]
    public void B2_11_linux_6_9_without_FWB_the_guest_reads_around_the_line_the_VMM_dirtied_and_sees_a_stale_byte()
    {
        // linux-6.9 on a host without FWB (neoverse-n1, Altra): usemem has no struct page outside the linear map, so
        // stage 2 maps it non-cacheable (Device, or Normal-NC with VM_ALLOW_ANY_UNCACHED) while the VMM's VMA is cacheable.
        var (rig, use) = WithUsemem("neoverse-n1", "linux-6.9");
        Assert.Equal(Errno.None, rig.Vmm.Mm.Write(use.Start + 0x80, [HostByte])); // through the cacheable alias: a dirty line
        var r = rig.Vcpu.Access(GuestAccessRequest.Read(UseIpa + 0x80, 0xFF, 1));
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.True(r.Effective!.Value.IsNonCacheable); // stage 2 forces a non-cacheable type
        Assert.Equal(AccessPath.Bypass, r.Path);
        var expected = HostByte; // the last write anyone made
        Assert.Equal(PocByte, r.Data![0]); // B2.11: the non-cacheable read sees the old PoC under the dirty line
        Assert.NotEqual(expected, r.Data[0]);
        // The fast path reads the same stale byte.
        Span<byte> b = stackalloc byte[1];
        Assert.True(rig.Vcpu.Read(UseIpa + 0x80, b).Completed);
        Assert.Equal(PocByte, b[0]);
        // Once the line is written back (the hardware may evict it at any time: D7.5.1), the guest sees the write.
        rig.Host.Caches.Evict(r.HostPhysAddr!.Value);
        Assert.Equal(expected, GuestReadByte(rig, UseIpa + 0x80));
    }

    [Fact]
    public void B2_11_a_device_DMA_write_to_the_PoC_is_hidden_by_a_clean_line_a_cacheable_reader_holds()
    {
        // linux-6.17 with FWB maps usemem Normal: the guest's first read allocates a clean line. A non-coherent device then
        // writes the PoC around the cache; the guest's next cacheable read hits the clean, stale line.
        var (rig, _) = WithUsemem("neoverse-v2", "linux-6.17");
        var pa = rig.Vcpu.Access(GuestAccessRequest.Read(UseIpa + 0x40, 0xFF, 1)).HostPhysAddr!.Value;
        rig.Host.DeviceWrite(Accessor.NonCoherentDevice(0), pa, [HostByte]);
        Assert.Equal(PocByte, GuestReadByte(rig, UseIpa + 0x40)); // stale: expected HostByte
        // A coherent device (NVLink-C2C) updates the held line: the guest sees the new byte.
        rig.Host.DeviceWrite(Accessor.CoherentDevice(1), pa, [0x5A]);
        Assert.Equal((byte)0x5A, GuestReadByte(rig, UseIpa + 0x40));
    }

    [Fact]
    public void D7_5_module_parameter_on_altra_a_guest_with_its_MMU_off_reads_memory_KVM_could_not_clean()
    {
        // proposal-module-param=on on Altra (no FWB): the cacheable usemem VMA is mapped Normal at stage 2, and the clean
        // to PoC KVM owes a new cacheable leaf has no kernel VA (rule 14), so it is not done. A guest running with
        // SCTLR_EL1.M=0 after boot makes Device-nGnRnE data accesses, which read the PoC.
        var (rig, use) = WithUsemem("neoverse-n1", "proposal-module-param=on");
        Assert.Equal(Errno.None, rig.Vmm.Mm.Write(use.Start + 0x100, [HostByte])); // the VMM loads an image: dirty line
        rig.Vcpu.SctlrM = false;
        var r = rig.Vcpu.Access(GuestAccessRequest.Read(UseIpa + 0x100, 0xFF, 1));
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        Assert.Equal(KvmS2MemType.Normal, r.Leaf!.Value.KvmType);
        Assert.Contains(r.Faults.SelectMany(f => f.Cmos), c => c.Needed && !c.Possible);
        Assert.True(r.Effective!.Value.IsDevice); // SCTLR_EL1.M=0: Device-nGnRnE
        Assert.Equal(PocByte, r.Data![0]);
        Assert.NotEqual(HostByte, r.Data[0]);
        // SCTLR_EL1.C=0 with the MMU on: Normal Non-cacheable, also around the cache.
        rig.Vcpu.SctlrM = true;
        rig.Vcpu.SctlrC = false;
        Assert.Equal(PocByte, GuestReadByte(rig, UseIpa + 0x100));
        // Caches on again: the guest's cacheable read sees the VMM's byte.
        rig.Vcpu.SctlrC = true;
        Assert.Equal(HostByte, GuestReadByte(rig, UseIpa + 0x100));
    }

    [Fact]
    public void D7_5_RAM_with_its_kernel_VA_is_cleaned_at_map_time_so_a_guest_with_its_MMU_off_reads_the_VMM_s_byte()
    {
        // The contrast: guest RAM on the same host. KVM cleans the new cacheable leaf to the PoC by kernel VA
        // (dcache_clean_inval_poc, no FWB), so the VMM's dirty line is written back before the guest runs.
        var rig = new Rig("neoverse-n1", "proposal-module-param=on");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, RamIpa, ram));
        Assert.Equal(Errno.None, rig.Vmm.Mm.Write(ram.Start + 0x100, [HostByte]));
        rig.Vcpu.SctlrM = false;
        var r = rig.Vcpu.Access(GuestAccessRequest.Read(RamIpa + 0x100, 0xFF, 1));
        Assert.Contains(r.Faults.SelectMany(f => f.Cmos), c => c.Needed && c.Possible);
        Assert.Equal(AccessPath.Bypass, r.Path);
        Assert.Equal(HostByte, r.Data![0]);
    }

    [Fact]
    public void With_FWB_the_same_image_is_read_correctly_with_the_MMU_off_since_FWB_forces_Write_Back()
    {
        // HCR_EL2.FWB (neoverse-v2): stage 2 forces Normal WB over the guest's Device-nGnRnE (the combine), so the read
        // goes through the cache and sees the VMM's dirty line (D8.2.12 FWB).
        var (rig, use) = WithUsemem("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.Vmm.Mm.Write(use.Start + 0x100, [HostByte]));
        rig.Vcpu.SctlrM = false;
        Assert.Equal(HostByte, GuestReadByte(rig, UseIpa + 0x100));
    }

    [Fact]
    public void A_guest_write_through_the_cache_is_what_the_VMM_reads_back_and_what_a_non_coherent_reader_misses()
    {
        var rig = new Rig("neoverse-n1", "linux-6.9");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, RamIpa, ram));
        var w = rig.Write(RamIpa + 8, 0x1122334455667788UL);
        Assert.Equal(GuestAccessOutcome.Completed, w.Outcome);
        var pa = w.HostPhysAddr!.Value;
        Assert.Equal(LineState.Dirty, rig.Host.Caches.StateOf(pa));
        var buf = new byte[8];
        Assert.Equal(Errno.None, rig.Vmm.Mm.Read(ram.Start + 8, buf));
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(buf));
        rig.Host.DeviceRead(Accessor.NonCoherentDevice(0), pa, buf);
        Assert.Equal(0UL, BitConverter.ToUInt64(buf)); // still only in the cache
        rig.Host.Caches.Maintain(CacheOp.DcCvac, pa);
        rig.Host.DeviceRead(Accessor.NonCoherentDevice(0), pa, buf);
        Assert.Equal(0x1122334455667788UL, BitConverter.ToUInt64(buf));
    }

    /// <summary>One step of the coherence property: who writes or reads, where, and what.</summary>
    private enum Op
    {
        GuestWrite,
        GuestRead,
        GuestFastWrite,
        GuestFastRead,
        VmmWrite,
        VmmRead,
        CoherentDeviceWrite,
        Evict,
        CleanInvalidate,
    }

    [Fact]
    public void Property_D7_5_1_with_every_access_cacheable_no_read_is_stale()
    {
        // Guest RAM and usemem on an FWB host (Normal WB everywhere), the VMM through its cacheable VMAs, a coherent
        // device: every read returns the last write made in program order (a shadow kept by the test).
        Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 1], Gen.Int[0, 8191], Gen.Byte).Array[1, 200]
            .Sample(ops =>
            {
                var rig = new Rig("neoverse-v2", "linux-6.17", ramSize: 1 * GiB);
                var gpu = rig.AddGh200();
                var ram = rig.Anon(2 * MiB);
                var use = gpu.MmapUsemem(rig.Vmm, 0, 2 * MiB).Value;
                Assert.Equal(Errno.None, rig.AddSlot(0, RamIpa, ram));
                Assert.Equal(Errno.None, rig.AddSlot(1, UseIpa, use));
                var shadow = new SparseLineMemory();
                (ulong Ipa, ulong Hva, ulong Key)[] regions = [(RamIpa, ram.Start, 0), (UseIpa, use.Start, 1UL << 32)];
                Span<byte> one = stackalloc byte[1];
                foreach (var (op, region, offset, value) in ops)
                {
                    var (ipa, hva, key) = regions[region];
                    ipa += (ulong)offset;
                    hva += (ulong)offset;
                    key += (ulong)offset;
                    shadow.ReadBytes(key, one);
                    var expected = one[0];
                    switch (op)
                    {
                        case Op.GuestWrite:
                            Assert.Equal(GuestAccessOutcome.Completed, rig.Vcpu.Access(GuestAccessRequest.Write(ipa, 0xFF, [value])).Outcome);
                            shadow.WriteBytes(key, [value]);
                            break;
                        case Op.GuestFastWrite:
                            Assert.True(rig.Vcpu.Write(ipa, [value]).Completed);
                            shadow.WriteBytes(key, [value]);
                            break;
                        case Op.VmmWrite:
                            Assert.Equal(Errno.None, rig.Vmm.Mm.Write(hva, [value]));
                            shadow.WriteBytes(key, [value]);
                            break;
                        case Op.CoherentDeviceWrite:
                            var pa = rig.Vcpu.Access(GuestAccessRequest.Read(ipa, 0xFF, 1)).HostPhysAddr!.Value;
                            rig.Host.DeviceWrite(Accessor.CoherentDevice(0), pa, [value]);
                            shadow.WriteBytes(key, [value]);
                            break;
                        case Op.GuestRead:
                            Assert.Equal(expected, GuestReadByte(rig, ipa));
                            break;
                        case Op.GuestFastRead:
                            Assert.True(rig.Vcpu.Read(ipa, one).Completed);
                            Assert.Equal(expected, one[0]);
                            break;
                        case Op.VmmRead:
                            Assert.Equal(Errno.None, rig.Vmm.Mm.Read(hva, one));
                            Assert.Equal(expected, one[0]);
                            break;
                        case Op.Evict:
                            rig.Host.Caches.Evict(rig.Vcpu.Access(GuestAccessRequest.Read(ipa, 0xFF, 1)).HostPhysAddr!.Value);
                            break;
                        case Op.CleanInvalidate:
                            rig.Host.Caches.Maintain(CacheOp.DcCivac, rig.Vcpu.Access(GuestAccessRequest.Read(ipa, 0xFF, 1)).HostPhysAddr!.Value, 4096);
                            break;
                    }
                }
            }, iter: 60);
    }
}
