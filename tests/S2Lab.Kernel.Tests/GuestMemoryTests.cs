using CsCheck;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>Physical memory contents: stored sparsely by line, read back exactly, zero where nothing non-zero was written.</summary>
public class MemoryContentTests
{
    /// <summary>Random writes (zeros included, some crossing lines and pages) then reads agree with a byte dictionary.</summary>
    [Fact]
    public void Random_writes_then_reads_equal_a_byte_model_and_untouched_memory_reads_zero()
    {
        const ulong Span = 64 * 1024; // 16 pages, so writes collide, overwrite and zero each other
        var write = Gen.Select(Gen.ULong[0, Span - 1], Gen.Byte[0, 3].Array[1, 200], Gen.Bool);
        Gen.Select(write.Array[0, 60], Gen.Int[0, 15]).Sample((writes, freed) =>
        {
            var mem = new PhysicalMemory(ramSize: 64 * MiB);
            var model = new Dictionary<ulong, byte>();
            var b = mem.Ram.Base;
            foreach (var (off, data, zero) in writes)
            {
                var bytes = zero ? new byte[data.Length] : data; // all-zero writes over data must clear it
                var len = (int)Math.Min((ulong)bytes.Length, Span - off);
                mem.Write(b + off, bytes.AsSpan(0, len));
                for (var i = 0; i < len; i++)
                    model[off + (ulong)i] = bytes[i];
            }

            // FreePage zeroes a page.
            var freedPfn = (b >> 12) + (ulong)freed;
            mem.FreePage(freedPfn);
            for (ulong i = 0; i < 4096; i++)
                model.Remove(((ulong)freed << 12) + i);

            var all = new byte[Span + 4096];
            mem.Read(b, all);
            for (ulong a = 0; a < (ulong)all.Length; a++)
                Assert.Equal(model.GetValueOrDefault(a), all[a]);

            // Pages with data are exactly those holding a non-zero byte in the model.
            var nonZero = model.Where(kv => kv.Value != 0).Select(kv => (b >> 12) + (kv.Key >> 12)).Distinct().Order().ToList();
            Assert.Equal(nonZero, mem.PagesWithDataIn(b, Span));
            Assert.Equal(nonZero.Count, mem.PagesWithData);
            Assert.All(Enumerable.Range(0, 16).Select(p => (b >> 12) + (ulong)p), p => Assert.Equal(nonZero.Contains(p), mem.HasData(p)));
        }, iter: 200);
    }

    [Fact]
    public void Zeros_written_where_nothing_was_cost_nothing_and_zeroing_data_releases_it()
    {
        var mem = new PhysicalMemory(ramSize: 64 * MiB);
        var b = mem.Ram.Base;
        mem.Write(b, new byte[4096 * 16]);
        Assert.Equal(0, mem.PagesWithData);
        mem.Write(b + 4096 + 70, [1, 2, 3]);
        Assert.Equal(1, mem.PagesWithData);
        var footprint = mem.ContentBytes;
        mem.Write(b + 4096 + 70, [0, 0, 0]);
        Assert.Equal(0, mem.PagesWithData);
        Assert.Empty(mem.PagesWithDataIn(b, 16 * 4096));
        // Writing the same line again reuses the freed storage.
        mem.Write(b + 8192, [9]);
        Assert.Equal(footprint, mem.ContentBytes);
    }
}

/// <summary>KVM_GET_DIRTY_LOG: a bitmap per slot, returned and cleared, one bit per page written.</summary>
public class DirtyLogTests
{
    /// <summary>
    /// Over random reads and writes on a slot whose page count is not a multiple of 64, each GET_DIRTY_LOG returns
    /// exactly the pages written since the previous one (reads set nothing), then the bitmap is clear; the pages it
    /// reported are write-protected again (rule 13: the next write is a permission fault).
    /// </summary>
    [Fact]
    public void Rule13_get_dirty_log_returns_and_clears_exactly_the_pages_written_since_the_last_call()
    {
        const int Pages = 200; // 4 words, the last one partly used
        var op = Gen.Select(Gen.Int[0, Pages - 1], Gen.Int[0, 2]);
        op.Array[0, 80].Array[1, 4].Sample(batches =>
        {
            var rig = new Rig("neoverse-v2", "linux-6.17");
            rig.Kvm.Observer = null; // the test reads results only: no events to build
            var ram = AnonymousMemory.Mmap(rig.Vmm, Pages * 4096UL).Value;
            Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram, KvmMemFlags.LOG_DIRTY_PAGES));
            var bits = new ulong[(Pages + 63) / 64];
            foreach (var batch in batches)
            {
                var written = new HashSet<int>();
                foreach (var (page, kind) in batch)
                {
                    var ipa = (1 * GiB) + ((ulong)page << 12);
                    var r = kind == 0 ? rig.Read(ipa) : rig.Write(ipa, (ulong)page + 1);
                    Assert.Equal(GuestAccessOutcome.Completed, r.Outcome);
                    if (kind != 0)
                        written.Add(page);
                }

                Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
                var reported = Enumerable.Range(0, Pages).Where(p => (bits[p >> 6] & (1UL << (p & 63))) != 0).ToHashSet();
                Assert.Equal(written.Order(), reported.Order());
                Assert.Equal(0UL, bits[^1] >> (Pages & 63)); // no bit past npages
                Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
                Assert.All(bits, w => Assert.Equal(0UL, w));
                foreach (var p in written.Take(3))
                {
                    var again = rig.Write((1 * GiB) + ((ulong)p << 12), 7);
                    Assert.True(again.Faults.Single().IsPermissionFault);
                }

                Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, bits));
            }
        }, iter: 40);
    }

    [Fact]
    public void The_bitmap_is_sized_to_the_slot_and_bad_slots_keep_their_errnos()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = AnonymousMemory.Mmap(rig.Vmm, 130 * 4096UL).Value; // 130 pages: 3 words
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram, KvmMemFlags.LOG_DIRTY_PAGES));
        Assert.Equal(Errno.None, rig.AddSlot(1, 2 * GiB, AnonymousMemory.Mmap(rig.Vmm, 4096).Value));
        Assert.Equal(130UL, rig.Vm.Memslots().ById(0)!.NPages);
        Assert.Equal(3, rig.Vm.Memslots().ById(0)!.DirtyBitmap!.Length);
        Assert.Equal(Errno.EFAULT, rig.Vm.GetDirtyLog(0, new ulong[2])); // one word short
        Assert.Equal(Errno.None, rig.Vm.GetDirtyLog(0, new ulong[3]));
        Assert.Equal(Errno.ENOENT, rig.Vm.GetDirtyLog(1, new ulong[3])); // not logging
        Assert.Equal(Errno.ENOENT, rig.Vm.GetDirtyLog(5, new ulong[3])); // no such slot
        Assert.Equal(Errno.EINVAL, rig.Vm.GetDirtyLog((uint)rig.Vm.Profile.UserMemSlots, new ulong[3]));
        Assert.Equal(Errno.EINVAL, rig.Vm.GetDirtyLog((uint)rig.Vm.Profile.AddressSpaces << 16, new ulong[3]));
    }
}

/// <summary>Guest accesses go through the stage-2 TLB: a hit serves a mapped page; an unmap or BBM is seen at once.</summary>
public class GuestTlbTests
{
    [Fact]
    public void A_mapped_page_is_served_from_the_TLB_and_an_unmap_makes_the_next_access_miss_and_fault()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB, thp: false).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram));
        var tlb = rig.Vm.Stage2.Tlb;
        Assert.Single(rig.Write(1 * GiB, 42).Faults);
        var hits = tlb.Hits;
        var misses = tlb.Misses;
        var again = rig.Read(1 * GiB);
        Assert.Empty(again.Faults);
        Assert.Equal(42UL, BitConverter.ToUInt64(again.Data));
        Assert.Equal(hits + 1, tlb.Hits);
        Assert.Equal(misses, tlb.Misses);

        // The VMM unmaps and maps the page again (the MMU notifier zaps stage 2, with TLB invalidation).
        Assert.Equal(Errno.None, rig.Vmm.Mm.Munmap(ram.Start, 4096));
        Assert.True(AnonymousMemory.Mmap(rig.Vmm, 4096, fixedAddress: ram.Start, thp: false).IsOk);
        misses = tlb.Misses;
        var after = rig.Read(1 * GiB);
        Assert.Single(after.Faults);
        Assert.Equal(misses + 1, tlb.Misses);
        Assert.Equal(0UL, BitConverter.ToUInt64(after.Data)); // a new, zero page: not the stale translation's data
    }

    [Fact]
    public void Rule13_write_protection_for_dirty_logging_is_seen_by_a_write_that_hit_the_TLB_before()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram));
        Assert.Single(rig.Write(1 * GiB, 1).Faults); // a 2 MiB block (THP)
        Assert.Empty(rig.Write(1 * GiB, 2).Faults); // TLB hit
        // Enabling dirty logging write-protects the slot and flushes the VMID: the cached writable entry is gone.
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram, KvmMemFlags.LOG_DIRTY_PAGES));
        var w = rig.Write(1 * GiB, 3);
        Assert.True(w.Faults.Single().IsPermissionFault);
        Assert.Equal(4096UL, w.Leaf!.Value.Size); // logging forces PAGE_SIZE: the block was broken (BBM)
        Assert.Equal(3UL, BitConverter.ToUInt64(rig.Read(1 * GiB).Data));
    }

    [Fact]
    public void The_allocation_free_path_agrees_with_the_full_access_on_outcome_and_data()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, ram, KvmMemFlags.READONLY));
        Span<byte> v = stackalloc byte[8];
        Assert.Equal(GuestAccessOutcome.MmioExit, rig.Vcpu.Write(1 * GiB, v).Outcome); // read-only slot
        Assert.Equal(GuestAccessOutcome.MmioExit, rig.Vcpu.Read(3 * GiB, v).Outcome); // no slot
        Assert.Equal(GuestAccessOutcome.AbortInjected, rig.Vcpu.Read((1 * GiB) + 4092, v).Outcome); // crosses a page
        Assert.True(rig.Vcpu.Read(1 * GiB, v).Completed);
        Assert.Equal(0UL, BitConverter.ToUInt64(v));
        rig.Host.Memory.Write(rig.Read(1 * GiB).HostPhysAddr!.Value + 8, BitConverter.GetBytes(0xABCDUL));
        Assert.True(rig.Vcpu.Read((1 * GiB) + 8, v).Completed);
        Assert.Equal(0xABCDUL, BitConverter.ToUInt64(v));
    }

    [Fact]
    public void Run_keeps_a_bounded_history_of_the_latest_accesses()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        Assert.Equal(Errno.None, rig.AddSlot(0, 1 * GiB, AnonymousMemory.Mmap(rig.Vmm, 1 * MiB).Value));
        const int N = ModelKvmVcpu.HistoryCapacity + 36;
        for (var i = 0; i < N; i++)
            rig.Vcpu.Enqueue(GuestAccessRequest.Write((1 * GiB) + ((ulong)i << 12), 0xFF, (ulong)i));
        Assert.Equal(KvmExitReason.Hlt, rig.Vcpu.Run().Value.Reason);
        Assert.Equal(N, rig.Vcpu.AccessesRun);
        var h = rig.Vcpu.History;
        Assert.Equal(ModelKvmVcpu.HistoryCapacity, h.Count);
        // Oldest first, ending with the last access run.
        Assert.Equal(Enumerable.Range(N - h.Count, h.Count).Select(i => (1 * GiB) + ((ulong)i << 12)), h.Select(r => r.Request.Ipa));
    }
}
