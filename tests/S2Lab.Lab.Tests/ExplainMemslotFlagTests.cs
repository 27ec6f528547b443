using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>
/// <c>s2lab explain</c> shows the memslot flags the VMM asks for. The VMM decides the cacheable flag
/// (KVM_MEM_ENABLE_CACHEABLE_PFNMAP, proposal-memslot-flag) from what userspace sees, the driver and the region
/// (<see cref="DeviceMemoryPolicy"/>), not from the VMA's cacheability, which it cannot see.
/// </summary>
public class ExplainMemslotFlagTests
{
    public static TheoryData<string, string> KindsAndDesigns()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in Explainer.RegionKinds)
        {
            foreach (var design in new[] { "proposal-memslot-flag", "proposal-memslot-flag:flag=prefer-migratable", "linux-6.17" })
                data.Add(kind, design);
        }
        return data;
    }

    /// <summary>
    /// For every region kind, explain's memslot flags (from its MemslotDecided event) are the flags the VMM's own
    /// Vmm.Start asks for when it starts a VM with that one region on the same host under the same policy.
    /// </summary>
    [Theory]
    [MemberData(nameof(KindsAndDesigns))]
    public void Explain_asks_for_the_memslot_flags_the_VMM_asks_for(string kind, string design)
    {
        foreach (var cpu in new[] { "neoverse-v2", "neoverse-n1" })
        {
            var explained = Explainer.Explain(cpu, design, kind, 0xFF, "read").Events.OfType<MemslotDecided>().Single();

            var (lab, region, policy) = Explainer.World(cpu, design, kind);
            var started = Vmm.Vmm.Start(lab.NewVmm("vmm"), new VmConfig("vm", 40, 1, [region]), policy);
            var vmm = started.Regions.Single();
            Assert.NotEqual("mmap", vmm.Call); // mapped; KVM may still refuse the memslot (rule 6), with these flags
            Assert.Equal(vmm.Flags, explained.Flags);
            started.Vm?.Dispose();
        }
    }

    /// <summary>
    /// Under proposal-memslot-flag with a VMM that prefers cacheable, the flag goes on nvgrace-gpu usemem alone: /dev/mem
    /// and a mixedmap device are cacheable VM_PFNMAP / VM_MIXEDMAP VMAs, but the VMM has no driver table entry for them.
    /// </summary>
    [Theory]
    [InlineData("nvgrace-usemem", true)]
    [InlineData("nvgrace-resmem", false)]
    [InlineData("devmem", false)]
    [InlineData("mixedmap", false)]
    [InlineData("vfio-bar", false)]
    [InlineData("anon", false)]
    public void Only_the_driver_tables_cacheable_memory_gets_the_cacheable_flag(string kind, bool flagged)
    {
        var md = Explainer.Explain("neoverse-v2", "proposal-memslot-flag:flag=prefer-cacheable", kind, 0xFF, "read").Events.OfType<MemslotDecided>().Single();
        Assert.Equal(flagged, (md.Flags & KvmMemFlags.ENABLE_CACHEABLE_PFNMAP) != 0);
    }
}
