using S2Lab.Arch.Translation;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Replay;

/// <summary>
/// The operations the arm64 oracle runs (oracle/arm64): seeded, deterministic episodes of one VM each. An episode
/// clears its window of the VMM's address space, creates a VM (mostly IPA size 0, sometimes others), asks capability
/// 243 on both fds and a few others, sometimes enables MTE, sets up the guest code page and vCPU, maps 1-4 VMAs of random kinds (anonymous,
/// read-only, the four remap_pfn_range flavours, the two VM_MIXEDMAP flavours), creates memslots over them (one VMA,
/// part of one, several with holes; LOG_DIRTY_PAGES, READONLY; some invalid), then reads, writes and fetches through
/// the vCPU, and sometimes changes the memory under a slot (munmap, a new mapping, a flags change, a move, a delete)
/// and accesses it again.
/// </summary>
public static class Arm64OracleOps
{
    /// <summary>Memslot of the guest code page (each VM's vcpu line).</summary>
    public const uint CodeSlot = 32000;

    /// <summary>IPA of the guest code page; generated memslots stay at or above <see cref="GpaBase"/>.</summary>
    public const ulong CodeGpa = 0x0800_0000;

    /// <summary>Host address of the guest code page.</summary>
    public const ulong CodeUaddr = 0x1F_0000_0000;

    /// <summary>Lowest IPA of a generated memslot (below it: code page and the probe's marker addresses).</summary>
    public const ulong GpaBase = 0x1000_0000;

    /// <summary>First host window; episodes use four 256 MiB windows in turn.</summary>
    public const ulong WindowBase = 0x20_0000_0000;

    public const ulong WindowSize = 0x1000_0000;

    private static readonly uint[] OtherCaps =
    [
        KvmCap.USER_MEMORY, KvmCap.NR_VCPUS, KvmCap.NR_MEMSLOTS, KvmCap.SYNC_MMU, KvmCap.MAX_VCPUS, KvmCap.READONLY_MEM,
        KvmCap.MULTI_ADDRESS_SPACE, KvmCap.ARM_VM_IPA_SIZE, KvmCap.USER_MEMORY2, KvmCap.GUEST_MEMFD, KvmCap.GUEST_MEMFD_FLAGS,
        KvmCap.ARM_MTE,
    ];

    private static readonly ulong[] VmTypes = [32, 36, 40, 44, 48, 31, 33, 52, 0x100 | 40, 0x8000_0000_0000_0028];

    private enum MteWhen
    {
        Never,
        First,
        AfterSlots,
        AfterVcpu,
    }

    private sealed record Region(ulong Uaddr, ulong Size, ReplayVmaKind Kind);

    private sealed record Slot(uint Id, ulong Gpa, ulong Size, ulong Uaddr);

    /// <summary>At least <paramref name="count"/> operations (whole episodes) for <paramref name="seed"/>.</summary>
    public static IReadOnlyList<ReplayOp> Generate(int seed, int count)
    {
        var rng = new Random(seed);
        var ops = new List<ReplayOp>();
        for (var episode = 0; ops.Count < count; episode++)
            Episode(rng, episode, ops);
        for (var i = 0; i < ops.Count; i++)
            ops[i] = Renumber(ops[i], i + 1);
        return ops;
    }

    private static ReplayOp Renumber(ReplayOp op, int line) => op switch
    {
        CreateVmOp c => c with { Line = line },
        SetRegionOp s => s with { Line = line },
        CapOp c => c with { Line = line },
        EnableCapOp e => e with { Line = line },
        MmapOp m => m with { Line = line },
        MunmapOp u => u with { Line = line },
        VcpuOp v => v with { Line = line },
        AccessOp a => a with { Line = line },
        _ => op,
    };

    private static void Episode(Random rng, int episode, List<ReplayOp> ops)
    {
        var window = WindowBase + (ulong)(episode % 4) * WindowSize;
        ops.Add(new MunmapOp(0, window, WindowSize));
        var type = rng.Next(100) < 85 ? 0UL : VmTypes[rng.Next(VmTypes.Length)];
        ops.Add(new CreateVmOp(0, type));
        ops.Add(new CapOp(0, false, KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED));
        ops.Add(new CapOp(0, true, KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED));
        for (var i = rng.Next(3); i > 0; i--)
            ops.Add(new CapOp(0, rng.Next(2) == 0, OtherCaps[rng.Next(OtherCaps.Length)]));
        // MTE (rule 6, fault-time check): enabled right after KVM_CREATE_VM, after the memslots but before the vCPU
        // (memslots do not block it), or after the vCPU (EINVAL); refused everywhere on a host without MTE.
        var mte = rng.Next(100) switch { < 20 => MteWhen.First, < 27 => MteWhen.AfterSlots, < 32 => MteWhen.AfterVcpu, _ => MteWhen.Never };
        if (mte == MteWhen.First)
            ops.Add(new EnableCapOp(0, KvmCap.ARM_MTE));
        var vcpu = rng.Next(100) < 92;
        if (vcpu && mte != MteWhen.AfterSlots)
            ops.Add(new VcpuOp(0, CodeSlot, CodeGpa, CodeUaddr));
        if (mte == MteWhen.AfterVcpu)
            ops.Add(new EnableCapOp(0, KvmCap.ARM_MTE));

        // VMAs, laid out from a random 2 MiB boundary of the window, sometimes with a one-page hole between them.
        var regions = new List<Region>();
        var cursor = window + (ulong)rng.Next(8) * PMD_SIZE;
        for (var n = 1 + rng.Next(4); n > 0; n--)
        {
            var kind = (ReplayVmaKind)rng.Next(8);
            var block = kind is not (ReplayVmaKind.Anon or ReplayVmaKind.AnonRo) && rng.Next(100) < 15;
            if (block)
                cursor = AlignUp(cursor, PMD_SIZE);
            var size = block ? PMD_SIZE : (ulong)(1 << rng.Next(5)) * PAGE_SIZE;
            var offset = block ? (ulong)rng.Next(64) * PMD_SIZE : (ulong)rng.Next(0x10000) * PAGE_SIZE;
            if (offset + size > ModelReplayMappings.CarvedSize)
                offset = ModelReplayMappings.CarvedSize - size;
            ops.Add(new MmapOp(0, kind, cursor, size, kind is ReplayVmaKind.Anon or ReplayVmaKind.AnonRo ? 0 : offset));
            regions.Add(new Region(cursor, size, kind));
            cursor += size + (rng.Next(100) < 25 ? PAGE_SIZE : 0);
        }

        // Memslots over them.
        var slots = new List<Slot>();
        var gpaCursor = GpaBase + (ulong)rng.Next(32) * PMD_SIZE;
        for (var n = 1 + rng.Next(4); n > 0; n--)
        {
            var first = rng.Next(regions.Count);
            var (uaddr, size) = rng.Next(10) switch
            {
                < 5 => (regions[first].Uaddr, regions[first].Size),
                < 7 => Span(regions, first, regions.Count - 1),
                _ => SubRange(rng, regions[first]),
            };
            var gpa = AlignUp(gpaCursor, PMD_SIZE) + (rng.Next(2) == 0 ? uaddr & (PMD_SIZE - 1) : (ulong)rng.Next(512) * PAGE_SIZE);
            gpaCursor = gpa + size + PMD_SIZE;
            var flags = rng.Next(100) switch
            {
                < 60 => 0u,
                < 75 => (uint)KvmMemFlags.LOG_DIRTY_PAGES,
                < 90 => (uint)KvmMemFlags.READONLY,
                < 95 => (uint)(KvmMemFlags.LOG_DIRTY_PAGES | KvmMemFlags.READONLY),
                _ => 1u << rng.Next(2, 8),
            };
            var id = (uint)rng.Next(1, 40);
            switch (rng.Next(100))
            {
                case < 4:
                    gpa += 0x800; // misaligned (rule 23)
                    break;
                case < 8 when slots.Count > 0:
                    gpa = slots[^1].Gpa; // overlaps (rule 32)
                    break;
                case < 11:
                    gpa = (1UL << (40 + 4 * rng.Next(3))) - PAGE_SIZE; // crosses an IPA limit (rule 4)
                    break;
                case < 13:
                    size += 0x800; // not a page multiple (rule 22)
                    break;
            }
            ops.Add(new SetRegionOp(0, 1, id, flags, gpa, size, uaddr));
            slots.Add(new Slot(id, gpa, size, uaddr));
        }

        if (mte == MteWhen.AfterSlots)
        {
            ops.Add(new EnableCapOp(0, KvmCap.ARM_MTE));
            if (vcpu)
                ops.Add(new VcpuOp(0, CodeSlot, CodeGpa, CodeUaddr));
        }

        Accesses(rng, slots, ops, 4 + rng.Next(20));

        // Change what is under a slot, then access it again.
        if (rng.Next(100) < 45 && slots.Count > 0)
        {
            var s = slots[rng.Next(slots.Count)];
            var r = regions[rng.Next(regions.Count)];
            switch (rng.Next(5))
            {
                case 0:
                    ops.Add(new MunmapOp(0, r.Uaddr, PAGE_SIZE));
                    break;
                case 1:
                    ops.Add(new MmapOp(0, (ReplayVmaKind)rng.Next(8), r.Uaddr, r.Size,
                        (ulong)rng.Next(0x10000 - 0x200) * PAGE_SIZE));
                    break;
                case 2:
                    ops.Add(new SetRegionOp(0, 1, s.Id, (uint)KvmMemFlags.LOG_DIRTY_PAGES, s.Gpa, s.Size, s.Uaddr));
                    break;
                case 3:
                    var moved = s.Gpa + 0x4000_0000;
                    ops.Add(new SetRegionOp(0, 1, s.Id, 0, moved, s.Size, s.Uaddr));
                    slots.Add(s with { Gpa = moved });
                    break;
                default:
                    ops.Add(new SetRegionOp(0, 1, s.Id, 0, s.Gpa, 0, s.Uaddr));
                    break;
            }
            Accesses(rng, slots, ops, 2 + rng.Next(8));
        }
    }

    private static (ulong Uaddr, ulong Size) Span(List<Region> regions, int first, int last) =>
        (regions[first].Uaddr, regions[last].Uaddr + regions[last].Size - regions[first].Uaddr);

    private static (ulong Uaddr, ulong Size) SubRange(Random rng, Region r)
    {
        var pages = (int)(r.Size / PAGE_SIZE);
        var start = rng.Next(pages);
        var len = 1 + rng.Next(pages - start);
        return (r.Uaddr + (ulong)start * PAGE_SIZE, (ulong)len * PAGE_SIZE);
    }

    private static void Accesses(Random rng, List<Slot> slots, List<ReplayOp> ops, int n)
    {
        ulong last = 0;
        for (var i = 0; i < n; i++)
        {
            ulong gpa;
            if (last != 0 && rng.Next(100) < 30)
            {
                gpa = last; // the same address again: a permission fault, or the mapping the first access made
            }
            else if (slots.Count == 0 || rng.Next(100) < 10)
            {
                gpa = GpaBase + (ulong)rng.Next(0x30000) * PAGE_SIZE + (ulong)rng.Next(512) * 8;
            }
            else
            {
                var s = slots[rng.Next(slots.Count)];
                var pages = Math.Max(1UL, s.Size / PAGE_SIZE);
                gpa = AlignDown(s.Gpa, PAGE_SIZE) + (ulong)rng.NextInt64((long)pages) * PAGE_SIZE + (ulong)rng.Next(512) * 8;
            }
            var kind = rng.Next(100) switch
            {
                < 45 => S2AccessKind.Read,
                < 80 => S2AccessKind.Write,
                _ => S2AccessKind.Execute,
            };
            if (kind == S2AccessKind.Execute)
                gpa &= ~3UL;
            ops.Add(new AccessOp(0, kind, gpa));
            last = gpa;
        }
    }
}
