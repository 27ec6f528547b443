using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Tests;

/// <summary>Rules 1-3: host capability, capability 243, VMA cacheability.</summary>
public class HostRuleTests
{
    [Theory]
    [InlineData("neoverse-n1", false)]
    [InlineData("neoverse-v1", true)]
    [InlineData("neoverse-v2", true)]
    [InlineData("cortex-a72", false)]
    [InlineData("max", true)]
    public void Rule01_cacheable_pfnmap_needs_FWB_and_DIC_not_IDC(string preset, bool supported)
    {
        var cpu = CpuPresets.Get(preset).Model;
        Assert.Equal(supported, cpu.SupportsCacheablePfnmap);
        Assert.Equal(cpu.HasStage2Fwb && cpu.HasCacheDic, supported);
    }

    [Fact]
    public void Rule01_IDC_alone_does_not_matter()
    {
        // FWB + IDC without DIC: not supported; FWB + DIC without IDC: supported.
        const ulong ctr = (1UL << 31) | (4UL << 16) | 4UL;
        var noDic = CpuModel.FromRegisters("x", 5, 1UL << 40, ctr | (1UL << 28));
        var noIdc = CpuModel.FromRegisters("y", 5, 1UL << 40, ctr | (1UL << 29));
        var host1 = new Host("a", noDic, KvmDesigns.Create("linux-6.17"));
        var host2 = new Host("b", noIdc, KvmDesigns.Create("linux-6.17"));
        Assert.Equal(0, new ModelKvmSystem(host1).CreateVm().Value.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value);
        Assert.Equal(1, new ModelKvmSystem(host2).CreateVm().Value.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value);
    }

    [Theory]
    [InlineData("linux-6.8", "neoverse-v2", Errno.None, 0L)]
    [InlineData("linux-6.9", "neoverse-v2", Errno.None, 0L)]
    [InlineData("linux-6.17", "neoverse-v2", Errno.EINVAL, 1L)]
    [InlineData("linux-6.17", "neoverse-n1", Errno.EINVAL, 0L)]
    [InlineData("proposal-memslot-flag", "neoverse-v2", Errno.EINVAL, 1L)]
    [InlineData("proposal-memslot-flag", "neoverse-n1", Errno.EINVAL, 0L)]
    [InlineData("proposal-module-param=on", "neoverse-n1", Errno.EINVAL, 0L)]
    [InlineData("proposal-module-param", "neoverse-v2", Errno.EINVAL, 1L)]
    public void Rule02_capability_243_on_system_and_vm_fd(string design, string cpu, Errno systemErrno, long vmValue)
    {
        var host = Host.Create("h", cpu, design);
        var kvm = new ModelKvmSystem(host);
        var sys = kvm.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        if (systemErrno == Errno.None)
            Assert.Equal(0, sys.Value);
        else
            Assert.Equal(systemErrno, sys.Error);
        Assert.Equal(vmValue, kvm.CreateVm().Value.CheckExtension(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED).Value);
    }

    [Theory]
    [InlineData(MtIndex.MT_NORMAL, true)]
    [InlineData(MtIndex.MT_NORMAL_TAGGED, true)]
    [InlineData(MtIndex.MT_NORMAL_NC, false)]
    [InlineData(MtIndex.MT_DEVICE_nGnRnE, false)]
    [InlineData(MtIndex.MT_DEVICE_nGnRE, false)]
    public void Rule03_vma_is_cacheable_unless_NC_or_device(MtIndex index, bool cacheable) =>
        Assert.Equal(cacheable, new PgProt(index).IsCacheable);

    [Theory]
    [InlineData(MtIndex.MT_NORMAL, 0xFF, 0xFF)]
    [InlineData(MtIndex.MT_NORMAL_TAGGED, 0xFF, 0xF0)]
    [InlineData(MtIndex.MT_NORMAL_NC, 0x44, 0x44)]
    [InlineData(MtIndex.MT_DEVICE_nGnRnE, 0x00, 0x00)]
    [InlineData(MtIndex.MT_DEVICE_nGnRE, 0x04, 0x04)]
    public void Rule03_MAIR_byte_of_each_index_and_TAGGED_is_0xF0_only_with_MTE(MtIndex index, int withoutMte, int withMte)
    {
        // proc.S boots with MT_NORMAL_TAGGED = MAIR_ATTR_NORMAL; mte_cpu_setup rewrites it to MAIR_ATTR_NORMAL_TAGGED.
        var prot = new PgProt(index);
        Assert.Equal(withoutMte, prot.MairByteFor(hostHasMte: false));
        Assert.Equal(withMte, prot.MairByteFor(hostHasMte: true));
        Assert.Equal(withoutMte, prot.MairByte); // the model's CPUs have no MTE
    }

    [Fact]
    public void Uapi_api_version_is_12_and_generic_caps()
    {
        var kvm = new ModelKvmSystem(Host.Create("h", "neoverse-v2", "linux-6.17"));
        Assert.Equal(12, kvm.GetApiVersion());
        Assert.Equal(32767, kvm.CheckExtension(KvmCap.NR_MEMSLOTS).Value);
        Assert.Equal(1, kvm.CheckExtension(KvmCap.USER_MEMORY2).Value);
        Assert.Equal(0, kvm.CheckExtension(KvmCap.MULTI_ADDRESS_SPACE).Value);
        Assert.Equal(48, kvm.CheckExtension(KvmCap.ARM_VM_IPA_SIZE).Value);
        Assert.Equal(0, kvm.CheckExtension(9999).Value);
        var x86 = new ModelKvmSystem(Host.Create("h", "neoverse-v2", "linux-6.17"), KvmProfile.X86_64);
        Assert.Equal(32764, x86.CheckExtension(KvmCap.NR_MEMSLOTS).Value);
        var smm = new ModelKvmSystem(Host.Create("h", "neoverse-v2", "linux-6.17"), KvmProfile.X86_64.WithAddressSpaces(2));
        Assert.Equal(2, smm.CheckExtension(KvmCap.MULTI_ADDRESS_SPACE).Value);
    }

    [Theory]
    [InlineData(0UL, Errno.None)]
    [InlineData(40UL, Errno.None)]
    [InlineData(32UL, Errno.None)]
    [InlineData(48UL, Errno.None)]
    [InlineData(31UL, Errno.EINVAL)]
    [InlineData(49UL, Errno.EINVAL)]
    [InlineData(52UL, Errno.EINVAL)]
    [InlineData(0x100UL, Errno.EINVAL)]
    public void CreateVm_ipa_size_in_low_8_bits(ulong type, Errno expected)
    {
        var kvm = new ModelKvmSystem(Host.Create("h", "neoverse-v2", "linux-6.17"));
        var r = kvm.CreateVm(type);
        Assert.Equal(expected, r.Error);
        if (r.IsOk)
            Assert.Equal(type == 0 ? 40 : (int)type, ((ModelKvmVm)r.Value).IpaBits);
    }

    [Fact]
    public void CreateVm_on_a_44_bit_host_refuses_48()
    {
        var kvm = new ModelKvmSystem(Host.Create("h", "cortex-a72", "linux-6.17"));
        Assert.Equal(Errno.EINVAL, kvm.CreateVm(48).Error);
        Assert.True(kvm.CreateVm(44).IsOk);
    }

    [Fact]
    public void Design_registry_lists_every_design_by_name()
    {
        Assert.Equal(["linux-6.8", "linux-6.9", "linux-6.17", "proposal-memslot-flag", "proposal-module-param"], KvmDesigns.Names);
        Assert.True(((ProposalModuleParamDesign)KvmDesigns.Create("proposal-module-param=on")).Enabled);
        Assert.False(((ProposalModuleParamDesign)KvmDesigns.Create("proposal-module-param")).Enabled);
        Assert.Null(KvmDesigns.TryCreate("linux-5.0", out var err));
        Assert.Contains("linux-6.17", err);
        Assert.Null(KvmDesigns.TryCreate("proposal-module-param=maybe", out _));
        Assert.Null(KvmDesigns.TryCreate("linux-6.17=on", out _));
    }
}
