using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

public class BreakBeforeMakeAndTlbTests
{
    [Fact]
    public void Replacing_a_valid_leaf_goes_through_invalid_and_TLBI_by_IPA_before_the_new_leaf()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        Assert.Equal(0x1000_0000UL, t.Translate(GiB, S2AccessKind.Read).Pa); // now in the TLB
        ulong oldLeaf = t.GetLeaf(GiB).Descriptor.Raw;
        t.ClearEvents();

        Assert.Equal(Stage2Errno.None, t.Map(GiB, 4 * KiB, 0x2000_0000, Normal(t)));

        Assert.Equal(
            [
                new Stage2Event(Stage2EventKind.BreakBeforeMake, GiB, 4 * KiB, 3, oldLeaf, 0),
                new Stage2Event(Stage2EventKind.TlbiIpa, GiB, 4 * KiB, 3, 0, 0),
            ],
            t.Events);
        Assert.Equal(1, t.Counters.BreakBeforeMake);
        // The TLB was invalidated, so the guest sees the new page at once.
        var r = t.Translate(GiB, S2AccessKind.Read);
        Assert.False(r.FromTlb);
        Assert.Equal(0x2000_0000UL, r.Pa);
    }

    [Fact]
    public void First_mapping_of_an_invalid_entry_needs_no_break_before_make()
    {
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t), 4 * KiB);
        Assert.Equal(0, t.Counters.BreakBeforeMake);
        Assert.Equal(0, t.Counters.TlbiByIpa);
        Assert.Equal(512, t.Counters.LeavesInstalled);
    }

    [Fact]
    public void Stale_TLB_entry_after_write_protect_without_invalidation_until_the_VMID_is_flushed()
    {
        // kvm_pgtable_stage2_wrprotect does no TLBI; kvm_mmu_wp_memory_region flushes the VMID afterwards.
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        Assert.False(t.Translate(GiB, S2AccessKind.Write).IsFault); // fills the TLB with a writable entry

        t.WriteProtect(GiB, 4 * KiB);
        Assert.False(t.GetLeaf(GiB).Descriptor.Writable);
        var stale = t.Translate(GiB, S2AccessKind.Write);
        Assert.True(stale.FromTlb);
        Assert.False(stale.IsFault); // the stale entry still allows the write
        Assert.Equal(new S2Fault(S2FaultKind.Permission, 3), t.Translate(GiB, S2AccessKind.Write, useTlb: false).Fault);

        t.InvalidateTlbVmid();
        Assert.Equal(new S2Fault(S2FaultKind.Permission, 3), t.Translate(GiB, S2AccessKind.Write).Fault);
    }

    [Fact]
    public void Stale_TLB_entry_after_a_descriptor_write_without_TLBI_and_gone_after_TLBI_by_IPA()
    {
        var t = Create();
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t));
        t.Translate(GiB, S2AccessKind.Read);
        var step = t.WalkSteps(GiB)[^1];
        t.Memory.PhysToVirt(step.DescriptorPa, 1)[0] = 0; // "unmap" behind the TLB's back
        Assert.Equal(0x1000_0000UL, t.Translate(GiB, S2AccessKind.Read).Pa);
        t.InvalidateTlbIpa(GiB, 3);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 3), t.Translate(GiB, S2AccessKind.Read).Fault);
    }

    [Fact]
    public void Restrict_permissions_invalidates_each_changed_leaf()
    {
        var t = Create();
        t.Map(GiB, 8 * KiB, 0x1000_0000, Normal(t), 4 * KiB);
        t.Translate(GiB, S2AccessKind.Write);
        t.Translate(GiB + 4 * KiB, S2AccessKind.Write);
        Assert.Equal(Stage2Errno.None, t.RestrictPermissions(GiB, 8 * KiB, S2Permissions.Write, out long changed));
        Assert.Equal(2, changed);
        Assert.Equal(2, t.Counters.TlbiByIpa);
        Assert.Equal(S2FaultKind.Permission, t.Translate(GiB, S2AccessKind.Write).Fault.Kind);
        Assert.Equal(S2FaultKind.Permission, t.Translate(GiB + 4 * KiB, S2AccessKind.Write).Fault.Kind);
    }

    [Fact]
    public void Relax_permissions_changes_the_leaf_and_invalidates_the_TLB_entry()
    {
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t, S2Permissions.Read));
        Assert.Equal(S2FaultKind.Permission, t.Translate(GiB + 0x1234, S2AccessKind.Write).Fault.Kind);
        Assert.Equal(Stage2Errno.None, t.RelaxPermissions(GiB + 0x1234, S2Permissions.Write));
        Assert.Equal(S2Permissions.ReadWrite, t.GetLeaf(GiB).Descriptor.Permissions);
        Assert.Equal(0, t.Counters.BreakBeforeMake);
        Assert.False(t.Translate(GiB + 0x1234, S2AccessKind.Write).IsFault);
        Assert.Equal(Stage2Errno.EAGAIN, t.RelaxPermissions(GiB + 4 * MiB, S2Permissions.Write)); // nothing mapped there
    }

    [Fact]
    public void Unmap_invalidates_each_leaf_by_IPA_or_once_by_range_with_TLBIRANGE()
    {
        var t = Create();
        t.Map(GiB, 64 * KiB, 0x1000_0000, Normal(t), 4 * KiB);
        t.Unmap(GiB, 64 * KiB);
        Assert.Equal(16, t.Counters.LeavesRemoved);
        Assert.Equal(16 + 2, t.Counters.TlbiByIpa); // 16 pages + the freed level-3 and level-2 tables
        Assert.Equal(0, t.Counters.TlbiByRange);

        var r = Create(tlbiRange: true);
        r.Map(GiB, 64 * KiB, 0x1000_0000, Normal(r), 4 * KiB);
        r.Unmap(GiB, 64 * KiB);
        Assert.Equal(0, r.Counters.TlbiByIpa);
        Assert.Equal(1, r.Counters.TlbiByRange);
    }

    [Fact]
    public void Unmap_of_part_of_a_block_removes_the_whole_block()
    {
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t));
        t.Translate(GiB + MiB, S2AccessKind.Read);
        t.Unmap(GiB, 4 * KiB);
        // The block is gone, and so is the level-2 table it left empty: the walk now stops at level 1.
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 1), t.Translate(GiB + MiB, S2AccessKind.Read).Fault);
        Assert.Equal(8 * (long)KiB, t.TableBytes);
    }

    [Fact]
    public void Split_replaces_a_block_by_break_before_make_and_keeps_every_translation()
    {
        var t = Create();
        t.Map(GiB, GiB, 0x40_0000_0000, Normal(t));
        t.Translate(GiB + 5 * MiB, S2AccessKind.Read);
        t.ClearEvents();
        Assert.Equal(Stage2Errno.None, t.Split(GiB, 4 * KiB));
        Assert.Equal(1, t.Counters.BlocksSplit);
        Assert.Equal(
            [Stage2EventKind.BreakBeforeMake, Stage2EventKind.TlbiIpa, Stage2EventKind.BlockSplit],
            t.Events.Select(e => e.Kind));
        Assert.Equal(1, t.Events[1].Level);
        // 1 level-2 table + 512 level-3 tables below the old 1G block.
        Assert.Equal(8 * (long)KiB + 513 * 4 * (long)KiB, t.TableBytes);
        var r = t.Translate(GiB + 5 * MiB + 0x123, S2AccessKind.Read);
        Assert.False(r.FromTlb);
        Assert.Equal(3, r.Level);
        Assert.Equal(0x40_0050_0123UL, r.Pa);
    }

    [Fact]
    public void Collapse_turns_a_full_contiguous_table_into_a_block_with_a_range_TLBI()
    {
        var t = Create();
        t.Map(GiB, 2 * MiB, 0x4000_0000, Normal(t), 4 * KiB);
        t.ClearEvents();
        Assert.Equal(Stage2Errno.None, t.Collapse(GiB, 2 * MiB, out long n));
        Assert.Equal(1, n);
        Assert.Equal([Stage2EventKind.BreakBeforeMake, Stage2EventKind.TlbiRange, Stage2EventKind.TableCollapsed], t.Events.Select(e => e.Kind));
        Assert.Equal(2, t.GetLeaf(GiB).Level);
        Assert.Equal(12 * (long)KiB, t.TableBytes); // root + level-2 table; the level-3 table is freed

        // Not collapsible: a hole, or different attributes.
        var h = Create();
        h.Map(GiB, 2 * MiB, 0x4000_0000, Normal(h), 4 * KiB);
        h.Unmap(GiB + 8 * KiB, 4 * KiB);
        Assert.Equal(Stage2Errno.None, h.Collapse(GiB, 2 * MiB, out long none));
        Assert.Equal(0, none);
        h.Map(GiB + 8 * KiB, 4 * KiB, 0x4000_2000, Normal(h, S2Permissions.Read));
        h.Collapse(GiB, 2 * MiB, out none);
        Assert.Equal(0, none);
    }

    [Fact]
    public void TLB_entries_are_per_VMID()
    {
        var tlb = new Stage2Tlb();
        var vm1 = Create(tlb: tlb, vmid: 1);
        var vm2 = Create(tlb: tlb, vmid: 2);
        vm1.Map(GiB, 4 * KiB, 0x1000_0000, Normal(vm1));
        vm2.Map(GiB, 4 * KiB, 0x2000_0000, Normal(vm2));
        Assert.Equal(0x1000_0000UL, vm1.Translate(GiB, S2AccessKind.Read).Pa);
        Assert.Equal(0x2000_0000UL, vm2.Translate(GiB, S2AccessKind.Read).Pa);
        Assert.True(vm1.Translate(GiB, S2AccessKind.Read).FromTlb);
        Assert.True(vm2.Translate(GiB, S2AccessKind.Read).FromTlb);

        vm1.InvalidateTlbVmid();
        Assert.False(vm1.Translate(GiB, S2AccessKind.Read).FromTlb);
        Assert.True(vm2.Translate(GiB, S2AccessKind.Read).FromTlb);

        tlb.InvalidateAll();
        Assert.Equal(0, tlb.CountEntries(1) + tlb.CountEntries(2));
    }

    [Fact]
    public void TLBI_with_a_wrong_level_hint_leaves_the_entry()
    {
        var tlb = new Stage2Tlb();
        tlb.Fill(7, GiB, S2Descriptor.Leaf(0x4000_0000, 2, new S2LeafAttributes(0xF, S2Permissions.Read)), 2);
        tlb.InvalidateIpa(7, GiB + 4 * KiB, levelHint: 3);
        Assert.True(tlb.TryLookup(7, GiB + 8 * KiB, out var e));
        Assert.Equal(2, e.Level);
        tlb.InvalidateIpa(7, GiB + 4 * KiB, levelHint: 2); // any address inside the block
        Assert.False(tlb.TryLookup(7, GiB + 8 * KiB, out _));
    }

    [Fact]
    public void TLBI_by_range_drops_block_and_page_entries_in_the_range_only()
    {
        var tlb = new Stage2Tlb();
        var attrs = new S2LeafAttributes(0xF, S2Permissions.Read);
        tlb.Fill(1, GiB, S2Descriptor.Leaf(0x4000_0000, 2, attrs), 2);
        tlb.Fill(1, GiB + 2 * MiB, S2Descriptor.Leaf(0x5000_0000, 3, attrs), 3);
        tlb.Fill(1, GiB + 4 * MiB, S2Descriptor.Leaf(0x6000_0000, 3, attrs), 3);
        tlb.InvalidateRange(1, GiB + MiB, 2 * MiB);
        Assert.False(tlb.TryLookup(1, GiB, out _));
        Assert.False(tlb.TryLookup(1, GiB + 2 * MiB, out _));
        Assert.True(tlb.TryLookup(1, GiB + 4 * MiB, out _));
    }

    [Fact]
    public void DBM_with_hardware_dirty_management_makes_the_first_write_set_S2AP_W()
    {
        var vtcr = VtcrEl2.Create(Granule.Size4K, 40, 1, hardwareAf: true, hardwareDirty: true);
        var t = Stage2PageTable.Create(vtcr, new Stage2Features(48));
        t.Map(GiB, 4 * KiB, 0x1000_0000, Normal(t, S2Permissions.Read) with { Dbm = true });
        Assert.False(t.Translate(GiB, S2AccessKind.Read).IsFault); // TLB holds the writable-clean entry
        Assert.False(t.Translate(GiB, S2AccessKind.Write).IsFault);
        Assert.True(t.GetLeaf(GiB).Descriptor.Writable);
    }
}
