using S2Lab.Arch.Caches;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>The kernel model's typed events (docs/architecture.md, "The event stream").</summary>
public class KernelEventTests
{
    [Fact]
    public void MemslotDecided_carries_the_change_the_rule_and_the_errno()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(2 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        Assert.Equal(Errno.EEXIST, rig.AddSlot(1, 0x1000, ram, size: PageSizes.PAGE_SIZE)); // rule 32
        Assert.Equal(Errno.EINVAL, rig.Vm.SetUserMemoryRegion(new KvmUserspaceMemoryRegion(2, (uint)KvmMemFlags.GUEST_MEMFD, 0, MiB, ram.Start))); // rule 19
        var ev = rig.Events.Events.OfType<MemslotDecided>().ToList();
        Assert.Equal(3, ev.Count);
        Assert.Equal((MemslotChange.Create, Errno.None, 0x0UL, 2 * MiB, ram.Start), (ev[0].Change!.Value, ev[0].Result, ev[0].Gpa, ev[0].Size, ev[0].Uaddr));
        Assert.Equal((MemslotChange.Create, Errno.EEXIST, 32, 1u), (ev[1].Change!.Value, ev[1].Result, ev[1].Rule, ev[1].Slot));
        Assert.Equal((Errno.EINVAL, 19), (ev[2].Result, ev[2].Rule));
        Assert.Null(ev[2].Change);
        Assert.All(ev, e => Assert.Equal((rig.Host.Name, 1), (e.Host, e.Vm)));
    }

    [Fact]
    public void A_fault_emits_its_decisions_then_the_stage2_write_and_CMOs_then_the_access_in_order()
    {
        var rig = new Rig("cortex-a72", "linux-6.17"); // no FWB, no DIC: the D-cache clean is needed
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(2 * MiB)));
        var r = rig.Write(0x2000, 0x1122);
        Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
        var ev = rig.Events.Events.Skip(1).ToList(); // after the memslot
        Assert.Equal(ev.Select(e => e.Seq).Order(), ev.Select(e => e.Seq));
        Assert.IsType<FaultDecided>(ev[0]);
        Assert.Equal(DecisionStage.Memslot, ((FaultDecided)ev[0]).Stage);
        var written = Assert.Single(ev.OfType<Stage2Written>());
        Assert.Equal((Stage2WriteKind.Map, r.Leaf), (written.Kind, written.Leaf));
        var cmo = Assert.Single(ev.OfType<CmoRequired>());
        Assert.Equal((CacheOp.DcCivac, true, true), (cmo.Op, cmo.Needed, cmo.Possible));
        Assert.True(ev.IndexOf(written) < ev.IndexOf(cmo));
        var accessed = Assert.IsType<MemoryAccessed>(ev[^1]);
        Assert.Equal(("vm1/vcpu0", S2AccessKind.Write, 0x2000UL, r.HostPhysAddr!.Value), (accessed.Agent, accessed.Access, accessed.Ipa, accessed.Pa));
        Assert.Equal(BitConverter.GetBytes(0x1122UL), accessed.Bytes.ToArray());
        Assert.Equal(r.Effective!.Value.ParAttr, accessed.Effective!.Value.ParAttr);
        Assert.Equal((byte)0xFF, accessed.Input!.Value.S1Attr);
    }

    [Fact]
    public void The_allocation_free_path_emits_the_access_without_a_combine()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(2 * MiB)));
        Assert.True(rig.Vcpu.Write(0x40, [1, 2, 3, 4]).Completed);
        Span<byte> read = stackalloc byte[4];
        Assert.True(rig.Vcpu.Read(0x40, read).Completed);
        var accesses = rig.Events.Events.OfType<MemoryAccessed>().ToList();
        Assert.Equal(2, accesses.Count);
        Assert.All(accesses, a => Assert.Null(a.Effective));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, accesses[1].Bytes.ToArray());
        Assert.Equal(S2AccessKind.Read, accesses[1].Access);
        // The fault of the first write was observed although nobody asked for an explanation.
        Assert.Contains(rig.Events.Events.OfType<FaultDecided>(), f => f.Stage == DecisionStage.Design && f.Rule == 11);
    }

    [Fact]
    public void Accesses_that_do_not_complete_end_with_their_outcome()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        rig.Read(0x900_0000);
        Span<byte> b = stackalloc byte[8];
        rig.Vcpu.Read(1UL << 41, b);
        var ended = rig.Events.Events.OfType<AccessEnded>().ToList();
        Assert.Equal([GuestAccessOutcome.MmioExit, GuestAccessOutcome.AbortInjected], ended.Select(e => e.Outcome));
        Assert.Equal(0x900_0000UL, ended[0].Ipa);
    }

    [Fact]
    public void Munmap_and_dirty_logging_show_as_stage2_writes()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(4 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        rig.Write(0x1000, 1);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram, KvmMemFlags.LOG_DIRTY_PAGES));
        Assert.Equal(Errno.None, rig.Vmm.Mm.Munmap(ram.Start, 4 * MiB));
        var kinds = rig.Events.Events.OfType<Stage2Written>().Select(w => w.Kind).ToList();
        Assert.Equal([Stage2WriteKind.Map, Stage2WriteKind.WriteProtect, Stage2WriteKind.Unmap], kinds);
    }

    [Fact]
    public void Without_an_observer_the_fast_path_allocates_nothing()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        rig.Kvm.Observer = null;
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, rig.Anon(2 * MiB)));
        Span<byte> b = stackalloc byte[8];
        rig.Vcpu.Write(0, b);
        var fewest = long.MaxValue;
        for (var pass = 0; pass < 5 && fewest != 0; pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 1000; i++)
            {
                rig.Vcpu.Read((ulong)(i % 64) * 8, b);
                rig.Vcpu.Write((ulong)(i % 64) * 8, b);
            }
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, fewest);
        Assert.Empty(rig.Events.Events);
    }
}
