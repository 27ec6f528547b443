using CsCheck;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Kvm.Stage2;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Tests.Support;
using static S2Lab.Kernel.Mm.PageSizes;
using static S2Lab.Kernel.Tests.Support.Rig;

namespace S2Lab.Kernel.Tests;

/// <summary>
/// Random sequences of memslot, mm and guest operations; the stage-2 invariants are checked after every step.
/// </summary>
public class PropertyTests
{
    private static readonly string[] Designs = ["linux-6.8", "linux-6.9", "linux-6.17", "proposal-memslot-flag", "proposal-module-param=on", "proposal-module-param"];
    private static readonly string[] Cpus = ["neoverse-v2", "neoverse-n1", "cortex-a72"];
    private static readonly byte[] Mairs = [0xFF, 0x44, 0x04, 0x00, 0xBB];

    private sealed class World
    {
        public required Rig Rig;
        public required List<(ulong Start, ulong Size)> Regions; // host ranges slots are made from
        public required NvGraceGpu Gpu;
        public required MixedMapDevice Mixed;
        public readonly ulong[] Gpas = [0x4000_0000, 0x8000_0000, 0x40_0000_0000, 0x40_4000_0000, 0x80_0000_0000, 0x10_0000_0000, 0x10_0020_1000];
    }

    private static World NewWorld(int designIx, int cpuIx)
    {
        var rig = new Rig(Cpus[cpuIx % Cpus.Length], Designs[designIx % Designs.Length], ramSize: 1 * GiB);
        var gpu = new NvGraceGpu(rig.Host, "gpu", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: 2 * GiB + 512 * MiB, Bar0Size: 4 * MiB));
        var mixed = new MixedMapDevice(rig.Host, "mixed", 8 * MiB);
        var regions = new List<(ulong, ulong)>();
        void Add(KvmResult<Vma> v)
        {
            if (v.IsOk)
                regions.Add((v.Value.Start, v.Value.Size));
        }
        Add(AnonymousMemory.Mmap(rig.Vmm, 8 * MiB));
        Add(AnonymousMemory.Mmap(rig.Vmm, 4 * MiB, thp: false));
        Add(Hugetlbfs.Mmap(rig.Vmm, 4 * MiB));
        Add(gpu.MmapUsemem(rig.Vmm, 0, GiB));
        Add(gpu.MmapResmem(rig.Vmm, 0, 4 * MiB));
        Add(gpu.MmapBar0(rig.Vmm));
        Add(mixed.Mmap(rig.Vmm));
        Add(DevMem.Mmap(rig.Vmm, rig.Host.Memory.Ram.Base + 512 * MiB, 4 * MiB));
        return new World { Rig = rig, Regions = regions, Gpu = gpu, Mixed = mixed };
    }

    private static void Step(World w, int op, int a, int b, int c)
    {
        var rig = w.Rig;
        var vm = rig.Vm;
        var region = w.Regions[(a & 0xFFFF) % w.Regions.Count];
        switch (op % 10)
        {
            case 0:
            case 1:
                {
                    // Create (or modify) a slot over part of a region.
                    var pages = region.Size >> PAGE_SHIFT;
                    var off = ((ulong)(uint)b % pages) & ~0x1FFUL;
                    var n = Math.Max(1UL, Math.Min(pages - off, 1UL + (ulong)(uint)c % 1024));
                    var flags = (KvmMemFlags)((uint)c >> 20 & 0xB); // LOG_DIRTY, READONLY, ENABLE_CACHEABLE_PFNMAP
                    var gpa = w.Gpas[(uint)b % w.Gpas.Length] + (((ulong)(uint)c >> 12 & 3) << 21);
                    _ = vm.SetUserMemoryRegion2(new((uint)(a >> 16 & 7), (uint)flags, gpa, n << PAGE_SHIFT, region.Start + (off << PAGE_SHIFT), 0, 0));
                    break;
                }
            case 2:
                _ = vm.SetUserMemoryRegion2(new((uint)(a >> 16 & 7), 0, 0, 0, 0, 0, 0)); // delete
                break;
            case 3:
                {
                    // Toggle dirty logging or move an existing slot.
                    if (vm.Memslots().ById(a >> 16 & 7) is { } s)
                    {
                        var move = (b & 1) == 0;
                        var flags = move ? s.Flags : s.Flags ^ KvmMemFlags.LOG_DIRTY_PAGES;
                        var gpa = move ? w.Gpas[(uint)c % w.Gpas.Length] : s.GuestPhysAddr;
                        _ = vm.SetUserMemoryRegion2(new(s.SlotField, (uint)flags, gpa, s.Size, s.UserspaceAddr, 0, 0));
                    }
                    break;
                }
            case 4:
                {
                    var off = ((ulong)(uint)b % (region.Size >> PAGE_SHIFT)) << PAGE_SHIFT;
                    _ = rig.Vmm.Mm.Mprotect(region.Start + off, (1UL + (ulong)(uint)c % 600) << PAGE_SHIFT, (Prot)((uint)c >> 16 & 7));
                    break;
                }
            case 5:
                {
                    var off = ((ulong)(uint)b % (region.Size >> PAGE_SHIFT)) << PAGE_SHIFT;
                    var len = (1UL + (ulong)(uint)c % 600) << PAGE_SHIFT;
                    _ = rig.Vmm.Mm.Munmap(region.Start + off, len);
                    if ((c & 1) == 0)
                        _ = AnonymousMemory.Mmap(rig.Vmm, len, fixedAddress: region.Start + off);
                    break;
                }
            case 6:
                {
                    var bits = new ulong[1 << 14];
                    _ = vm.GetDirtyLog((uint)(a >> 16 & 7), bits);
                    break;
                }
            default:
                {
                    // A guest access inside (or near) a slot.
                    var slots = vm.Memslots().InGfnOrder().ToList();
                    var pick = slots.Count == 0 ? null : slots[(int)((uint)b % (uint)slots.Count)];
                    var ipa = pick is null || (c & 15) == 0
                        ? w.Gpas[(uint)b % w.Gpas.Length]
                        : pick.GuestPhysAddr + (((ulong)(uint)c % pick.NPages) << PAGE_SHIFT);
                    ipa += (ulong)(a & 0x7F8);
                    var type = (S2AccessKind)(((uint)c >> 28) % 3);
                    var mair = Mairs[(uint)a % Mairs.Length];
                    var req = type == S2AccessKind.Write ? GuestAccessRequest.Write(ipa, mair, (ulong)c) : new GuestAccessRequest(ipa, mair, type);
                    var r = rig.Vcpu.Access(req);
                    if (r.Outcome == GuestAccessOutcome.Completed && type == S2AccessKind.Write)
                        Assert.Equal((ulong)c, BitConverter.ToUInt64(rig.Read(ipa, mair).Data));
                    break;
                }
        }
    }

    /// <summary>The invariants of the task, checked over every stage-2 leaf.</summary>
    private static void CheckInvariants(World w, string design)
    {
        var vm = w.Rig.Vm;
        var host = w.Rig.Host;
        foreach (var leaf in vm.Stage2.Leaves())
        {
            // No executable Device or Normal-NC leaf.
            Assert.False(leaf.Executable && leaf.KvmType != KvmS2MemType.Normal, $"executable non-Normal leaf {leaf}");
            // Under linux-6.17 without FWB && DIC: no cacheable leaf of memory outside map memory.
            if (design == "linux-6.17" && !host.Cpu.SupportsCacheablePfnmap)
                Assert.False(leaf.KvmType == KvmS2MemType.Normal && !host.Memory.PfnIsMapMemory(leaf.Pa >> PAGE_SHIFT), $"cacheable PFNMAP leaf on a non-FWB host: {leaf}");
            var step = leaf.Size > PMD_SIZE ? leaf.Size / 8 : PAGE_SIZE;
            for (ulong o = 0; o < leaf.Size; o += step)
            {
                var gfn = (leaf.Ipa + o) >> PAGE_SHIFT;
                var slot = vm.Memslots().Find(gfn);
                Assert.True(slot is not null, $"leaf {leaf} maps gfn {gfn:x} outside every memslot");
                // No writable leaf in a read-only slot.
                Assert.False(leaf.Writable && slot!.IsReadOnly, $"writable leaf {leaf} in read-only {slot}");
                if (slot!.GmemOnly)
                    continue;
                // No leaf maps a pfn that is no longer behind its memslot's VMA.
                var hva = slot.GfnToHva(gfn);
                // (A block never reaches past its VMA: the host leaf it copies lies inside the VMA, rule 15.)
                var vma = w.Rig.Vmm.Mm.FindVma(hva);
                var pte = vma?.Backing.Lookup(vma, hva);
                Assert.True(vma is not null, $"leaf {leaf} maps hva {hva:x} which has no VMA");
                Assert.True(pte is not null, $"leaf {leaf}: no host page at hva {hva:x}");
                Assert.Equal(pte!.Value.Pfn, (leaf.Pa + o) >> PAGE_SHIFT);
                Assert.False(leaf.Writable && (vma.Flags & VmFlags.VM_WRITE) == 0, $"writable leaf {leaf} over non-writable {vma}");
            }
        }
    }

    [Fact]
    public void Random_memslot_mm_and_guest_sequences_keep_the_stage2_invariants()
    {
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 2], Gen.Select(Gen.Int[0, 9], Gen.Int, Gen.Int, Gen.Int).Array[1, 60])
            .Sample((d, cpu, ops) =>
            {
                var w = NewWorld(d, cpu);
                var log = new System.Text.StringBuilder($"{Designs[d]} {Cpus[cpu]}\n");
                foreach (var (op, a, b, c) in ops)
                {
                    log.AppendLine($"op {op} a={a:x} b={b:x} c={c:x}");
                    Step(w, op, a, b, c);
                    try
                    {
                        CheckInvariants(w, Designs[d]);
                    }
                    catch (Exception e)
                    {
                        throw new InvalidOperationException(log + e.Message, e);
                    }
                }
            }, iter: 150);
    }

    [Fact]
    public void Memslot_set_matches_a_naive_list_under_random_creates_and_deletes()
    {
        Gen.Select(Gen.Int[0, 63], Gen.Int[0, 200], Gen.Int[1, 40], Gen.Bool).Array[1, 300].Sample(ops =>
        {
            var set = new MemslotSet(64);
            var naive = new Dictionary<int, (ulong Base, ulong N)>();
            foreach (var (id, start, n, delete) in ops)
            {
                var b = (ulong)start;
                var len = (ulong)n;
                if (delete)
                {
                    if (set.ById(id) is { } old)
                    {
                        set.Remove(old);
                        naive.Remove(id);
                    }
                    continue;
                }
                var overlaps = naive.Any(kv => kv.Key != id && kv.Value.Base < b + len && b < kv.Value.Base + kv.Value.N);
                Assert.Equal(overlaps, set.Overlaps(b, b + len, id));
                if (!overlaps && set.ById(id) is null)
                {
                    set.Add(MemslotFactory.Make(id, b, len));
                    naive[id] = (b, len);
                }
                for (ulong g = 0; g < 260; g++)
                {
                    var expect = naive.Where(kv => g >= kv.Value.Base && g < kv.Value.Base + kv.Value.N).Select(kv => (int?)kv.Key).FirstOrDefault();
                    Assert.Equal(expect, set.Find(g)?.Id);
                }
                Assert.Equal(naive.Count, set.Count);
                Assert.Equal(naive.Keys.Order(), set.InGfnOrder().Select(s => s.Id).Order());
                Assert.True(set.InGfnOrder().Zip(set.InGfnOrder().Skip(1)).All(p => p.First.EndGfn <= p.Second.BaseGfn));
            }
        }, iter: 200);
    }

    /// <summary>
    /// A /dev/kvm nobody observes takes the fault handler's unreported path (no <c>FaultDecided</c>, no walk to name the
    /// leaf written): it must answer exactly as an observed one, faults, CMOs and stage 2 included.
    /// </summary>
    [Fact]
    public void Without_an_observer_the_model_answers_exactly_as_with_one()
    {
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 2], Gen.Select(Gen.Int[0, 9], Gen.Int, Gen.Int, Gen.Int).Array[1, 40])
            .Sample((d, cpu, ops) =>
            {
                var observed = NewWorld(d, cpu);
                var unobserved = NewWorld(d, cpu);
                unobserved.Rig.Kvm.Observer = null;
                unobserved.Rig.Events.Clear(); // the set-up's events
                foreach (var (op, a, b, c) in ops)
                {
                    Step(observed, op, a, b, c);
                    Step(unobserved, op, a, b, c);
                }
                foreach (var ipa in observed.Gpas)
                {
                    var x = observed.Rig.Read(ipa);
                    var y = unobserved.Rig.Read(ipa);
                    Assert.Equal(x.Outcome, y.Outcome);
                    Assert.Equal(x.RunError, y.RunError);
                    Assert.Equal(x.Leaf, y.Leaf);
                    Assert.Equal(x.Effective?.ParAttr, y.Effective?.ParAttr);
                    Assert.Equal(x.Data, y.Data);
                    Assert.Equal(Faults(x), Faults(y));
                }
                Assert.Equal(observed.Rig.Vm.Stage2.Leaves(), unobserved.Rig.Vm.Stage2.Leaves());
                Assert.NotEmpty(observed.Rig.Events.Events);
                Assert.Empty(unobserved.Rig.Events.Events);

                static IEnumerable<string> Faults(GuestAccessResult r) =>
                    r.Faults.Select(f => $"{f.IsPermissionFault} {f.Error} {f.Decision} {f.MappingSize} {f.Prot} {string.Join(";", f.Cmos)}");
            }, iter: 60);
    }

    [Fact]
    public void Memslot_set_with_thousands_of_slots_splits_and_merges_chunks_correctly()
    {
        // Enough slots for many chunks (128 per chunk) and several top-level groups (32 chunks each).
        Gen.Select(Gen.Int[1, 3], Gen.Int[0, 1000]).Sample((spread, seed) =>
        {
            var rnd = new Random(seed);
            var set = new MemslotSet(12000);
            var naive = new SortedDictionary<ulong, (int Id, ulong N)>();
            var ids = Enumerable.Range(0, 12000).OrderBy(_ => rnd.Next()).ToList();
            foreach (var id in ids)
            {
                var b = (ulong)id * 8 * (ulong)spread;
                var n = 1UL + (ulong)rnd.Next(7);
                set.Add(MemslotFactory.Make(id, b, n));
                naive[b] = (id, n);
            }
            foreach (var id in ids.Take(7000))
            {
                var b = (ulong)id * 8 * (ulong)spread;
                set.Remove(set.ById(id)!);
                naive.Remove(b);
            }
            var keys = naive.Keys.ToArray();
            for (var q = 0; q < 20000; q++)
            {
                var g = (ulong)rnd.NextInt64(0, 12000L * 8 * spread + 16);
                var i = Array.BinarySearch(keys, g);
                if (i < 0)
                    i = ~i - 1;
                int? expect = i >= 0 && g < keys[i] + naive[keys[i]].N ? naive[keys[i]].Id : null;
                Assert.Equal(expect, set.Find(g)?.Id);
            }
            Assert.Equal(naive.Count, set.Count);
            Assert.Equal(naive.Values.Select(v => v.Id), set.InGfnOrder().Select(x => x.Id));
        }, iter: 8);
    }
}
