using CsCheck;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>Address spaces, VMAs, drivers and MMU notifiers.</summary>
public class MmTests
{
    [Fact]
    public void Vm_flags_have_linux_bit_values()
    {
        Assert.Equal(0x400UL, (ulong)VmFlags.VM_PFNMAP);
        Assert.Equal(0x4000UL, (ulong)VmFlags.VM_IO);
        Assert.Equal(0x1000_0000UL, (ulong)VmFlags.VM_MIXEDMAP);
        Assert.Equal(0x40_0000UL, (ulong)VmFlags.VM_HUGETLB);
        Assert.Equal(1UL << 39, (ulong)VmFlags.VM_ALLOW_ANY_UNCACHED);
        Assert.Equal(1UL << 33, (ulong)VmFlags.VM_MTE_ALLOWED);
    }

    [Fact]
    public void Munmap_and_mprotect_split_vmas_and_keep_pgoff_linear()
    {
        var host = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = host.CreateProcess("p");
        var v = AnonymousMemory.Mmap(p, 8 * MiB).Value;
        Assert.Equal(Errno.None, p.Mm.Mprotect(v.Start + 2 * MiB, 2 * MiB, Prot.PROT_READ));
        Assert.Equal(3, p.Mm.Vmas.Count);
        Assert.Equal(VmFlags.VM_READ, p.Mm.Vmas[1].Flags & (VmFlags.VM_READ | VmFlags.VM_WRITE));
        Assert.Equal(v.PgOff + 512, p.Mm.Vmas[1].PgOff);
        Assert.Equal(Errno.None, p.Mm.Munmap(v.Start + 5 * MiB, MiB));
        Assert.Equal(4, p.Mm.Vmas.Count);
        Assert.Null(p.Mm.FindVma(v.Start + 5 * MiB));
        Assert.Equal(Errno.ENOMEM, p.Mm.Mprotect(v.Start + 4 * MiB, 2 * MiB, Prot.PROT_READ)); // crosses the hole
        Assert.Equal(Errno.EINVAL, p.Mm.Munmap(v.Start + 1, 4096));
    }

    [Fact]
    public void Mprotect_changes_the_vmas_before_a_hole_and_then_fails_with_ENOMEM()
    {
        // do_mprotect_pkey: a hole at the start changes nothing; a hole later is found after the VMAs before it changed.
        var host = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = host.CreateProcess("p");
        var v = AnonymousMemory.Mmap(p, 16 * 4096).Value;
        Assert.Equal(Errno.None, p.Mm.Munmap(v.Start + (9 * 4096), 4096));
        Assert.Equal(Errno.ENOMEM, p.Mm.Mprotect(v.Start + (7 * 4096), 3 * 4096, Prot.PROT_NONE));
        Assert.Equal(VmFlags.VM_NONE, p.Mm.FindVma(v.Start + (8 * 4096))!.Flags & (VmFlags.VM_READ | VmFlags.VM_WRITE));
        Assert.Equal(VmFlags.VM_READ | VmFlags.VM_WRITE, p.Mm.FindVma(v.Start + (6 * 4096))!.Flags & (VmFlags.VM_READ | VmFlags.VM_WRITE));
        Assert.Equal(Errno.ENOMEM, p.Mm.Mprotect(v.Start + (9 * 4096), 2 * 4096, Prot.PROT_NONE));
        Assert.Equal(VmFlags.VM_READ | VmFlags.VM_WRITE, p.Mm.FindVma(v.Start + (10 * 4096))!.Flags & (VmFlags.VM_READ | VmFlags.VM_WRITE));
    }

    [Fact]
    public void Host_data_survives_vma_splits_and_is_freed_on_munmap()
    {
        var host = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = host.CreateProcess("p");
        var v = AnonymousMemory.Mmap(p, 4 * MiB).Value;
        Assert.Equal(Errno.None, p.Mm.Write(v.Start + 3 * MiB, [1, 2, 3]));
        Assert.Equal(Errno.None, p.Mm.Mprotect(v.Start, MiB, Prot.PROT_READ));
        var buf = new byte[3];
        Assert.Equal(Errno.None, p.Mm.Read(v.Start + 3 * MiB, buf));
        Assert.Equal(new byte[] { 1, 2, 3 }, buf);
        Assert.Equal(Errno.EFAULT, p.Mm.Write(v.Start, [9])); // now read-only
        var before = host.Memory.AllocatedRamPages;
        Assert.True(before >= 512);
        Assert.Equal(Errno.None, p.Mm.Munmap(v.Start, 4 * MiB));
        Assert.Equal(0UL, host.Memory.AllocatedRamPages);
        Assert.Equal(Errno.EFAULT, p.Mm.Read(v.Start + 3 * MiB, buf));
    }

    [Fact]
    public void Mmu_notifier_zaps_stage2_on_munmap_and_mprotect_before_returning()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var ram = rig.Anon(8 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        for (ulong a = 0; a < 8 * MiB; a += 2 * MiB)
            Assert.Equal(GuestAccessOutcome.Completed, rig.Write(a, a).Outcome);
        Assert.NotNull(rig.Vm.Stage2.GetLeaf(2 * MiB));
        Assert.Equal(Errno.None, rig.Vmm.Mm.Mprotect(ram.Start + 2 * MiB, 4096, Prot.PROT_READ));
        Assert.Null(rig.Vm.Stage2.GetLeaf(2 * MiB)); // the whole block covering it goes
        Assert.NotNull(rig.Vm.Stage2.GetLeaf(0));
        // The data is still there; the guest can read it but no longer write that page.
        Assert.Equal(2 * MiB, BitConverter.ToUInt64(rig.Read(2 * MiB).Data));
        Assert.Equal(Errno.EFAULT, rig.Write(2 * MiB, 1).RunError);
        Assert.Equal(Errno.None, rig.Vmm.Mm.Munmap(ram.Start + 4 * MiB, 2 * MiB));
        Assert.Null(rig.Vm.Stage2.GetLeaf(4 * MiB));
        Assert.Equal(Errno.EFAULT, rig.Read(4 * MiB).RunError);
        // Remapping the range with new anonymous memory: the guest sees zeroes, not the old data.
        _ = AnonymousMemory.Mmap(rig.Vmm, 2 * MiB, fixedAddress: ram.Start + 4 * MiB).Value;
        Assert.Equal(0UL, BitConverter.ToUInt64(rig.Read(4 * MiB).Data));
    }

    [Fact]
    public void Nvgrace_gpu_regions_have_the_driver_shape()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var gpu = new NvGraceGpu(rig.Host, "gpu", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 4 * GiB + 300 * MiB));
        Assert.Equal(3 * GiB, gpu.Usemem.Size); // (4.3 GiB - 1 GiB) rounded down to 512 MiB
        Assert.Equal(gpu.DeviceMemory.End - GiB, gpu.Resmem!.Base);
        Assert.Equal(4 * GiB, NvGraceGpu.FakeBarSize(gpu.Usemem.Size));
        Assert.False(rig.Host.Memory.PfnIsMapMemory(gpu.Usemem.Base >> 12));
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.Equal(VmFlags.VM_PFNMAP | VmFlags.VM_IO, use.Flags & (VmFlags.VM_PFNMAP | VmFlags.VM_IO | VmFlags.VM_ALLOW_ANY_UNCACHED));
        Assert.Equal(MtIndex.MT_NORMAL, use.PageProt.AttrIndex);
        Assert.Equal(gpu.Usemem.Base >> 12, use.PgOff);
        var res = gpu.MmapResmem(rig.Vmm).Value;
        Assert.Equal(MtIndex.MT_NORMAL_NC, res.PageProt.AttrIndex);
        Assert.True(res.Flags.HasFlag(VmFlags.VM_ALLOW_ANY_UNCACHED));
        var bar = gpu.MmapBar0(rig.Vmm).Value;
        Assert.Equal(MtIndex.MT_DEVICE_nGnRE, bar.PageProt.AttrIndex);
        Assert.True(bar.Flags.HasFlag(VmFlags.VM_ALLOW_ANY_UNCACHED | VmFlags.VM_IO | VmFlags.VM_PFNMAP));
        Assert.Equal(16 * MiB, bar.Size);
        Assert.Throws<ArgumentException>(() => new NvGraceGpu(rig.Host, "bad", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: GiB)));
    }

    [Fact]
    public void Nvgrace_usemem_mixedmap_option_changes_only_the_vma_type()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var cfg = new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 4 * GiB, Bar0Size: 16 * MiB);
        var pfn = new NvGraceGpu(rig.Host, "gpu0", cfg);
        var mixed = new NvGraceGpu(rig.Host, "gpu1", cfg with { UsememMapping = NvGraceUsememMapping.Mixedmap });
        var a = pfn.MmapUsemem(rig.Vmm).Value;
        var b = mixed.MmapUsemem(rig.Vmm).Value;
        const VmFlags Type = VmFlags.VM_PFNMAP | VmFlags.VM_MIXEDMAP | VmFlags.VM_IO;
        Assert.Equal(VmFlags.VM_PFNMAP | VmFlags.VM_IO, a.Flags & Type);
        Assert.Equal(VmFlags.VM_MIXEDMAP | VmFlags.VM_IO, b.Flags & Type);
        Assert.Equal(a.Flags & ~Type, b.Flags & ~Type);
        Assert.Equal(a.PageProt, b.PageProt); // same pgprot (MT_NORMAL, cacheable: rule 3)
        Assert.True(b.IsCacheable);
        // vm_pgoff stays the vfio file offset (BAR4 region index in the high bits), not a pfn.
        Assert.Equal(4UL << (40 - 12), b.PgOff);
        // Same pfns: each device's own usemem, page for page, also after a split of the VMA.
        foreach (var off in new ulong[] { 0, 4096, 3 * MiB + 8192, b.Size - 4096 })
        {
            Assert.Equal((pfn.Usemem.Base + off) >> 12, a.Backing.Lookup(a, a.Start + off)!.Value.Pfn);
            Assert.Equal((mixed.Usemem.Base + off) >> 12, b.Backing.Lookup(b, b.Start + off)!.Value.Pfn);
        }

        Assert.Equal(Errno.None, rig.Vmm.Mm.Munmap(b.Start, 2 * MiB));
        var tail = rig.Vmm.Mm.FindVma(b.Start + 2 * MiB)!;
        Assert.Equal((mixed.Usemem.Base + (2 * MiB) + 4096) >> 12, tail.Backing.Lookup(tail, tail.Start + 4096)!.Value.Pfn);
        // Offset mappings and bad ranges as for the PFNMAP mapping.
        var part = mixed.MmapUsemem(rig.Vmm, offset: 1 * GiB, length: 2 * MiB).Value;
        Assert.Equal((mixed.Usemem.Base + GiB) >> 12, part.Backing.Lookup(part, part.Start)!.Value.Pfn);
        Assert.Equal(Errno.EINVAL, mixed.MmapUsemem(rig.Vmm, offset: 100).Error);
        Assert.Equal(Errno.EINVAL, mixed.MmapUsemem(rig.Vmm, offset: mixed.Usemem.Size).Error);
    }

    [Fact]
    public void Mincore_reports_populated_pages_and_the_kernel_errnos()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var mm = rig.Vmm.Mm;
        var anon = rig.Anon(8 * MiB);
        var vec = new byte[2048];
        Assert.Equal(Errno.None, mm.Mincore(anon.Start, 8 * MiB, vec));
        Assert.All(vec, b => Assert.Equal(0, b)); // nothing touched yet
        var one = new byte[1];
        Assert.Equal(Errno.None, mm.Write(anon.Start + (5 * 4096) + 8, one.AsSpan(0, 1)));
        Assert.Equal(Errno.None, mm.Mincore(anon.Start, 8 * MiB, vec));
        // The write faulted in a folio (THP where the range allows): every page of it is resident, and only those.
        var resident = Enumerable.Range(0, 2048).Where(i => vec[i] == 1).ToList();
        Assert.Contains(5, resident);
        var folio = mm.FindVma(anon.Start)!.Backing.Lookup(anon, anon.Start + (5 * 4096))!.Value.MappingSize / 4096;
        Assert.Equal((int)folio, resident.Count);
        // A length that is not a page multiple covers the partial page.
        Assert.Equal(Errno.None, mm.Mincore(anon.Start + (5 * 4096), 1, one));
        Assert.Equal(1, one[0]);

        // VM_PFNMAP (vfio BAR, nvgrace usemem): the walk skips it as a hole; no page cache behind the device file.
        var gpu = rig.AddGh200();
        var use = gpu.MmapUsemem(rig.Vmm).Value;
        Assert.Equal(Errno.None, mm.Mincore(use.Start, 16 * 4096, vec));
        Assert.All(vec.Take(16), b => Assert.Equal(0, b));

        // Errnos: EINVAL misaligned start; ENOMEM for a hole (after filling the mapped part) or beyond TASK_SIZE; EFAULT for a short vec.
        Assert.Equal(Errno.EINVAL, mm.Mincore(anon.Start + 1, 4096, vec));
        Assert.Equal(Errno.ENOMEM, mm.Mincore(anon.End - 4096, 2 * 4096, vec));
        Assert.Equal(Errno.ENOMEM, mm.Mincore(mm.TaskSize - 4096, 2 * 4096, vec));
        Assert.Equal(Errno.ENOMEM, mm.Mincore(mm.TaskSize, 4096, vec));
        Assert.Equal(Errno.EFAULT, mm.Mincore(anon.Start, 3 * 4096, new byte[2]));
        Assert.Equal(Errno.None, mm.Mincore(anon.Start, 0, []));
        Assert.Equal(Errno.None, mm.Munmap(anon.Start, 8 * MiB));
        Assert.Equal(Errno.ENOMEM, mm.Mincore(anon.Start, 4096, vec));
    }

    [Fact]
    public void PagesWithDataIn_lists_exactly_the_pages_written_with_non_zero_data_in_a_physical_range()
    {
        Gen.Select(Gen.UInt[0, (uint)(64 * MiB) - 8], Gen.Byte).Array[0, 40].Sample(writes =>
        {
            var mem = new PhysicalMemory(ramSize: 64 * MiB);
            var dev = mem.AddDeviceRegion("hbm", 64 * MiB, PhysRegionKind.DeviceMemory);
            var bytes = new Dictionary<ulong, byte>();
            foreach (var (off, b) in writes)
            {
                mem.Write(dev.Base + off, [b, 1]); // may straddle two pages
                bytes[dev.Base + off] = b;
                bytes[dev.Base + off + 1] = 1;
            }

            // A page whose bytes are all zero (never written, or written with zeros only) reads as zeros: no data.
            var written = new SortedSet<ulong>(bytes.Where(kv => kv.Value != 0).Select(kv => kv.Key >> 12));

            // The whole region (scanned through the dictionary) and a small window (probed page by page) agree with the writes.
            Assert.Equal(written.ToList(), mem.PagesWithDataIn(dev.Base, dev.Size));
            var lo = dev.Base + (3 * MiB) + 100;
            var want = written.Where(p => p >= lo >> 12 && p <= (lo + (5 * 4096) - 1) >> 12).ToList();
            Assert.Equal(want, mem.PagesWithDataIn(lo, 5 * 4096));
            Assert.All(want, p => Assert.True(mem.HasData(p)));
        }, iter: 100);
        Assert.Empty(new PhysicalMemory(ramSize: 64 * MiB).PagesWithDataIn(0x8000_0000, 0));
    }

    [Fact]
    public void Mm_PagesWithData_matches_reading_everything_and_fails_where_Read_fails()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var mm = rig.Vmm.Mm;
        var gpu = rig.AddGh200();
        var use = gpu.MmapUsemem(rig.Vmm, 0, 64 * MiB).Value;
        var anon = AnonymousMemory.Mmap(rig.Vmm, 4 * MiB, thp: false).Value;
        foreach (var (vma, off) in new[] { (use, 0UL), (use, 5 * 4096UL + 17), (use, 63 * MiB), (anon, 8192UL), (anon, 3 * MiB) })
            Assert.Equal(Errno.None, mm.Write(vma.Start + off, [0xAB]));
        foreach (var vma in new[] { use, anon })
        {
            var offsets = new List<ulong>();
            Assert.Equal(Errno.None, mm.PagesWithData(vma.Start, vma.Size, offsets));
            // Brute force: read every page, keep those with a non-zero byte.
            var page = new byte[4096];
            var brute = new List<ulong>();
            for (ulong o = 0; o < vma.Size; o += 4096)
            {
                Assert.Equal(Errno.None, mm.Read(vma.Start + o, page));
                if (page.Any(b => b != 0))
                    brute.Add(o);
            }

            Assert.Equal(brute, offsets);
        }

        // Where copy_from_user fails, so does this: a hole, a PROT_NONE part, a misaligned start.
        Assert.Equal(Errno.None, mm.Mprotect(use.Start + MiB, 4096, Prot.PROT_NONE));
        Assert.Equal(Errno.EFAULT, mm.Read(use.Start, new byte[2 * MiB]));
        Assert.Equal(Errno.EFAULT, mm.PagesWithData(use.Start, 2 * MiB, []));
        Assert.Equal(Errno.None, mm.Munmap(anon.Start + MiB, 4096));
        Assert.Equal(Errno.EFAULT, mm.Read(anon.Start, new byte[2 * MiB]));
        Assert.Equal(Errno.EFAULT, mm.PagesWithData(anon.Start, 2 * MiB, []));
        Assert.Equal(Errno.EINVAL, mm.PagesWithData(anon.Start + 1, 4096, []));
    }

    [Fact]
    public void Hugetlbfs_needs_whole_huge_pages()
    {
        var host = Host.Create("h", "neoverse-v2", "linux-6.17");
        var p = host.CreateProcess("p");
        Assert.Equal(Errno.EINVAL, Hugetlbfs.Mmap(p, 3 * MiB).Error);
        var v = Hugetlbfs.Mmap(p, 4 * MiB).Value;
        Assert.True(v.Flags.HasFlag(VmFlags.VM_HUGETLB));
        Assert.True(PageSizes.IsAligned(v.Start, 2 * MiB));
    }

    [Fact]
    public void Devmem_pgprot_follows_phys_mem_access_prot()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17");
        var gpu = rig.AddGh200();
        Assert.Equal(MtIndex.MT_NORMAL, DevMem.Mmap(rig.Vmm, rig.Host.Memory.Ram.Base, MiB).Value.PageProt.AttrIndex);
        Assert.Equal(MtIndex.MT_NORMAL_NC, DevMem.Mmap(rig.Vmm, rig.Host.Memory.Ram.Base, MiB, oSync: true).Value.PageProt.AttrIndex);
        Assert.Equal(MtIndex.MT_DEVICE_nGnRE, DevMem.Mmap(rig.Vmm, gpu.Usemem.Base, MiB).Value.PageProt.AttrIndex);
    }

    [Fact]
    public void Ram_exhaustion_fails_the_fault_not_the_model()
    {
        var rig = new Rig("neoverse-v2", "linux-6.17", ramSize: 4 * MiB);
        var ram = AnonymousMemory.Mmap(rig.Vmm, 64 * MiB, thp: false).Value;
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        var failed = 0;
        for (ulong a = 0; a < 64 * MiB; a += 4096)
            if (rig.Write(a, 1).Outcome == GuestAccessOutcome.RunFailed)
                failed++;
        Assert.True(failed > 0);
    }

    [Fact]
    public void Junk_mm_calls_and_guest_accesses_give_errnos_not_exceptions()
    {
        var rig = new Rig("neoverse-n1", "linux-6.17");
        var ram = rig.Anon(4 * MiB);
        Assert.Equal(Errno.None, rig.AddSlot(0, 0, ram));
        Assert.Equal(Errno.EINVAL, rig.Vmm.Mm.Munmap(ram.Start, ulong.MaxValue));
        Assert.Equal(Errno.ENOMEM, rig.Vmm.Mm.Mprotect(ram.Start, ulong.MaxValue - 10, Prot.PROT_READ));
        Assert.Equal(Errno.EINVAL, rig.Vmm.Mm.InsertVma(0, 0, PgProt.Default, null, new LinearPfnBacking("x"), "x").Error);
        Assert.Equal(Errno.EINVAL, rig.Vmm.Mm.InsertVma(4096, 0, PgProt.Default, null, new LinearPfnBacking("x"), "x", ulong.MaxValue - 4095).Error);
        var rnd = new Random(7);
        for (var i = 0; i < 3000; i++)
        {
            var ipa = i % 3 == 0 ? (ulong)rnd.NextInt64() << rnd.Next(0, 12) : (ulong)rnd.Next(0, 5 << 20);
            var type = (S2AccessKind)rnd.Next(0, 5);
            var len = rnd.Next(-3, 5000);
            var req = new GuestAccessRequest(ipa, (byte)rnd.Next(256), type, len, i % 5 == 0 ? null : new byte[rnd.Next(0, 20)]);
            var r = rig.Vcpu.Access(req);
            Assert.True(Enum.IsDefined(r.Outcome));
            _ = r.ToString();
        }
    }
}
