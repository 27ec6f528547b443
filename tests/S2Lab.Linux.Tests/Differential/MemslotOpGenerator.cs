using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>
/// Differences already recorded in docs/kvm-x86-differences.md. Exploration can steer around them to find the next
/// one (a sequence stops at its first difference); the differential tests themselves never avoid anything.
/// </summary>
[Flags]
public enum KnownDifferences
{
    None = 0,
    D1_InitSharedWithoutMmap = 1 << 0,
    D2_GmemOffsetLoffOverflow = 1 << 1,
    D3_DeleteWithGmemFlag = 1 << 2,
    D4_ClearGmemFlag = 1 << 3,
    All = D1_InitSharedWithoutMmap | D2_GmemOffsetLoffOverflow | D3_DeleteWithGmemFlag | D4_ClearGmemFlag,
}

/// <summary>The architecture limits the generator aims its corner cases at.</summary>
/// <param name="UserSlots">KVM_USER_MEM_SLOTS (KVM_CAP_NR_MEMSLOTS): rule 20.</param>
/// <param name="AddressSpaces">kvm_arch_nr_memslot_as_ids: rule 26.</param>
/// <param name="UserAddressLimit">The access_ok() limit: uaddr + size must not exceed it (rule 24).</param>
/// <param name="MaxGpaBits">The arch's GPA limit for a slot's end (x86: kvm_mmu_max_gfn; arm64: the IPA size).</param>
public sealed record GeneratorLimits(uint UserSlots, uint AddressSpaces, ulong UserAddressLimit, int MaxGpaBits)
{
    public const ulong Page = 4096;

    public static GeneratorLimits X86_64 { get; } = new(32764, 1, 0x7FFF_FFFF_F000, 52);
}

/// <summary>
/// Seeded random memslot operation sequences that aim at every corner of rules 19-34: misaligned fields, overlaps,
/// moves, flag-only changes, resizes, deletes of absent slots, slot ids and sizes at their limits, overflows,
/// guest_memfd bindings (bad handles, another VM's guest_memfd, offsets past the end, overlapping bindings).
/// Successful slots stay small (at most 2^20 pages): the real kernel allocates per-page metadata for each slot
/// (x86 rmaps with the shadow MMU: 8 bytes a page), so a maximal 2^31-1 page slot would cost it 16 GiB.
/// </summary>
public sealed class MemslotOpGenerator(int seed, GeneratorLimits limits, KnownDifferences avoid = KnownDifferences.None)
{
    private const ulong Page = GeneratorLimits.Page;
    private const ulong MaxPagesSafe = 1UL << 20;
    private const ulong UaddrBase = 0x7f00_0000_0000;
    private readonly Random _rng = new(seed);
    private readonly List<ReplayOp> _ops = [];
    private readonly List<SetRegionOp> _history = []; // set ops of the current VM, for moves, flag changes, deletes
    private readonly List<(int Handle, ulong Size, int Vm)> _gmems = [];
    private int _vm = -1;
    private int _line;

    /// <summary>Generates <paramref name="count"/> operations (including the create_vm lines).</summary>
    public IReadOnlyList<ReplayOp> Generate(int count)
    {
        NewVm();
        while (_ops.Count < count)
        {
            var roll = _rng.Next(1000);
            if (roll < 4 && _history.Count > 20)
                NewVm();
            else if (roll < 5)
                BadVmType();
            else if (roll < 380)
                Add(NewSlot());
            else if (roll < 620)
                Mutate();
            else if (roll < 660)
                Add(DeleteMaybeAbsent());
            else if (roll < 800)
                Add(Corner(NewSlot()));
            else if (roll < 850)
                CreateGmem();
            else if (roll < 980)
                Add(GmemSlot());
            else
                Add(NewSlot() with { Version = 1, Flags = Pick(4u, 5u, 8u, 0x10000u, 0x80000000u) }); // rule 19
        }
        return _ops;
    }

    private void NewVm()
    {
        _ops.Add(new CreateVmOp(++_line));
        _vm++;
        _history.Clear();
    }

    /// <summary>KVM_CREATE_VM with a type this host may not support (x86: VM_TYPES; arm64: IPA size bits), then a normal VM.</summary>
    private void BadVmType()
    {
        _ops.Add(new CreateVmOp(++_line, Pick(1UL, 2UL, 3UL, 4UL, 0x100UL, 1UL << 63)));
        // Operations against a VM that failed to be created are EBADF; one or two of them, then a working VM.
        for (var i = _rng.Next(3); i > 0; i--)
            Add(NewSlot());
        NewVm();
    }

    private void Add(SetRegionOp op)
    {
        if (avoid.HasFlag(KnownDifferences.D3_DeleteWithGmemFlag) && op.MemorySize == 0)
            op = op with { Flags = op.Flags & ~4u };
        if (avoid.HasFlag(KnownDifferences.D2_GmemOffsetLoffOverflow) && op.GmemOffset < 1UL << 63 && op.GmemOffset + op.MemorySize >= 1UL << 63)
            op = op with { GmemOffset = 1UL << 63 };
        op = op with { Line = ++_line };
        _ops.Add(op);
        _history.Add(op);
    }

    private T Pick<T>(params T[] items) => items[_rng.Next(items.Length)];

    private ulong Rand64() => (ulong)_rng.NextInt64() ^ ((ulong)_rng.Next(2) << 63);

    private uint SmallSlot() => (uint)_rng.Next(48);

    private ulong Pages()
    {
        var r = _rng.Next(100);
        return r < 80 ? (ulong)_rng.Next(1, 9) : r < 95 ? (ulong)_rng.Next(9, 1024) : (ulong)_rng.NextInt64(1024, (long)MaxPagesSafe + 1);
    }

    private uint RamFlags() => Pick(0u, 0u, 0u, 1u, 2u, 3u);

    private SetRegionOp NewSlot()
    {
        var pages = Pages();
        var gpa = (ulong)_rng.Next(0, 4096) * Page;
        if (_rng.Next(10) == 0)
            gpa = (ulong)_rng.NextInt64(0, 1L << (limits.MaxGpaBits - 12 - 1)) * Page;
        var uaddr = UaddrBase + (ulong)_rng.Next(0, 1 << 20) * Page;
        var v = _rng.Next(2) + 1;
        // v2 without GUEST_MEMFD: the guest_memfd fields are ignored (rules 25, 33 apply only with the flag).
        return new SetRegionOp(0, v, SmallSlot(), RamFlags(), gpa, pages * Page, uaddr,
            v == 2 ? _rng.Next(-1, _gmems.Count) : -1, v == 2 ? Pick(0UL, Page, 3UL, Rand64()) : 0);
    }

    private void Mutate()
    {
        if (_history.Count == 0)
        {
            Add(NewSlot());
            return;
        }
        var old = _history[_rng.Next(_history.Count)];
        var m = _rng.Next(16) switch
        {
            0 => old with { GuestPhysAddr = Pick(old.GuestPhysAddr + Page, old.GuestPhysAddr - Page, (ulong)_rng.Next(0, 4096) * Page) }, // move (rule 31) and overlaps (rule 32)
            1 => old with { Flags = old.Flags ^ 1 }, // LOG_DIRTY toggle: FLAGS_ONLY
            2 => old with { Flags = old.Flags ^ 2 }, // READONLY toggle: EINVAL on an existing slot
            3 => old with { MemorySize = old.MemorySize + Page * (ulong)_rng.Next(1, 4) }, // resize
            4 => old with { UserspaceAddr = old.UserspaceAddr + Page }, // other uaddr
            5 => old, // identical: no change, 0
            6 or 9 or 10 => old with { MemorySize = 0 }, // delete (rule 29)
            7 => old with { Flags = old.Flags ^ 4, Version = 2 }, // GUEST_MEMFD toggled on an existing slot
            11 => old with { Slot = (old.Slot + 1) % 48 }, // same range, other id: overlap (rule 32)
            12 => old with { Slot = old.Slot | ((uint)_rng.Next(1, 3) << 16) }, // the same slot in another address space (rule 26)
            13 => old with { GuestPhysAddr = Pick((1UL << limits.MaxGpaBits) - old.MemorySize, (1UL << limits.MaxGpaBits) - old.MemorySize + Page) }, // move to the GPA limit
            14 => old with { Slot = limits.UserSlots - 1 }, // the last user slot id
            15 => old with { UserspaceAddr = limits.UserAddressLimit - old.MemorySize }, // a uaddr ending exactly at the user limit
            _ => old with { Slot = SmallSlot() },
        };
        if (avoid.HasFlag(KnownDifferences.D4_ClearGmemFlag) && (old.Flags & 4) != 0 && m.MemorySize != 0)
            m = m with { Flags = m.Flags | 4 };
        if (m.Version == 1 && (m.Flags & 4) != 0)
            m = m with { Version = 2 };
        Add(m);
    }

    private SetRegionOp DeleteMaybeAbsent()
    {
        var slot = _rng.Next(3) == 0 ? Pick(limits.UserSlots - 1, 200u, 0x10000u | SmallSlot()) : SmallSlot();
        var op = new SetRegionOp(0, _rng.Next(2) + 1, slot, Pick(0u, 0u, 1u, 2u, 8u), Pick(0UL, Page, 5UL), 0, Pick(0UL, UaddrBase, 3UL));
        return op;
    }

    /// <summary>One field of an otherwise ordinary request pushed to a corner.</summary>
    private SetRegionOp Corner(SetRegionOp op)
    {
        var maxGpa = 1UL << limits.MaxGpaBits;
        switch (_rng.Next(14))
        {
            case 0: // misaligned size (rule 22)
                return op with { MemorySize = op.MemorySize + Pick(1UL, 0x800UL, Page - 1) };
            case 1: // misaligned gpa (rule 23)
                return op with { GuestPhysAddr = op.GuestPhysAddr + Pick(1UL, 0x800UL, Page - 1) };
            case 2: // misaligned uaddr (rule 24)
                return op with { UserspaceAddr = op.UserspaceAddr + Pick(1UL, 0x10UL, Page - 1) };
            case 3: // user range limit (rule 24): exactly at the limit, one page past, wrapping, kernel half, tagged
                var size = op.MemorySize;
                return op with
                {
                    UserspaceAddr = Pick(limits.UserAddressLimit - size, limits.UserAddressLimit - size + Page, ulong.MaxValue - Page + 1,
                        0xffff_8000_0000_0000UL, 0x0100_0000_0000_0000UL | op.UserspaceAddr, 0x8000_0000_0000UL, 0UL),
                };
            case 4: // slot ids at their limits (rules 20, 26)
                return op with
                {
                    Slot = Pick(limits.UserSlots - 1, limits.UserSlots, limits.UserSlots + 1, 32766u, 32767u, 0xffffu,
                        0x10000u, (limits.AddressSpaces << 16) | SmallSlot(), 0x7fff0000u | SmallSlot(), uint.MaxValue, 0x1_0000u | (limits.UserSlots - 1)),
                };
            case 5: // flags (rule 21): every defined and some undefined bits
                return op with { Flags = Pick(3u, 8u, 0x10u, 0x8000u, 0x10000u, 0x20000u, 0x80000000u, 1u << _rng.Next(32)) };
            case 6: // sizes at the page-count limit (rule 28): 2^31-1 pages only where an earlier rule already fails
                return op with
                {
                    MemorySize = Pick((1UL << 31) * Page, ((1UL << 31) + 1) * Page, ulong.MaxValue & ~(Page - 1), 1UL << 63),
                    UserspaceAddr = Pick(0x1000UL, op.UserspaceAddr),
                };
            case 7:
                return op with { MemorySize = ((1UL << 31) - 1) * Page, GuestPhysAddr = op.GuestPhysAddr | 1 };
            case 8: // gpa + size wraps (rule 27)
                return op with { GuestPhysAddr = ulong.MaxValue - Page + 1 - Pick(0UL, Page, op.MemorySize - Page) };
            case 9: // the arch's GPA limit: end exactly at it, one page past, far past
                return op with { GuestPhysAddr = Pick(maxGpa - op.MemorySize, maxGpa - op.MemorySize + Page, maxGpa, 1UL << 56, 1UL << 63) };
            case 10: // another address space's slot id with a valid range
                return op with { Slot = ((uint)_rng.Next(1, 4) << 16) | op.Slot };
            case 11: // zero uaddr, large gpa: valid
                return op with { UserspaceAddr = 0, GuestPhysAddr = maxGpa >> 1 };
            case 12: // random everything
                return op with { GuestPhysAddr = Rand64(), MemorySize = Rand64(), UserspaceAddr = Rand64(), Flags = (uint)_rng.Next(8) };
            default: // modest huge slots that still fit (metadata cost stays small)
                return op with { MemorySize = MaxPagesSafe * Page, GuestPhysAddr = Pick(1UL << 32, 1UL << 40) };
        }
    }

    private void CreateGmem()
    {
        var size = _rng.Next(12) switch
        {
            0 => 0UL,
            1 => Page * (ulong)_rng.Next(1, 16) + Pick(1UL, 0x800UL),
            2 => Pick(1UL << 40, (1UL << 63) - Page, 1UL << 63, ulong.MaxValue & ~(Page - 1)),
            _ => Page * (ulong)_rng.Next(1, 64),
        };
        var flags = _rng.Next(5) == 0 ? Pick(1UL, 2UL, 3UL, 4UL, 1UL << 63) : 0;
        if (avoid.HasFlag(KnownDifferences.D1_InitSharedWithoutMmap) && flags == 2)
            flags = 3;
        _ops.Add(new CreateGmemOp(++_line, size, flags));
        _gmems.Add((_gmems.Count, size, _vm));
    }

    private SetRegionOp GmemSlot()
    {
        if (_gmems.Count == 0)
            CreateGmem();
        // Mostly this VM's newest guest_memfd; sometimes another VM's, a failed one, or no descriptor at all.
        var handle = _rng.Next(10) switch
        {
            0 => -1,
            1 or 2 => _rng.Next(_gmems.Count),
            _ => _gmems[^1].Handle,
        };
        var gsize = handle >= 0 ? _gmems[handle].Size : 16 * Page;
        var pages = (ulong)_rng.Next(1, 9);
        var offset = _rng.Next(10) switch
        {
            0 => Page + Pick(1UL, 0x800UL), // misaligned (rule 25)
            1 => gsize - pages * Page + Page, // one page past the end (rule 33)
            2 => gsize, // at the end
            3 => Pick(ulong.MaxValue & ~(Page - 1), (1UL << 63) - Page, 1UL << 63), // wrap / loff_t sign
            4 => gsize >= pages * Page ? gsize - pages * Page : 0, // exactly up to the end
            _ => (ulong)_rng.Next(0, 8) * Page,
        };
        var flags = _rng.Next(8) switch
        {
            0 => 5u, // + LOG_DIRTY: not allowed with GUEST_MEMFD
            1 => 6u, // + READONLY: not allowed with GUEST_MEMFD
            _ => 4u,
        };
        return new SetRegionOp(0, 2, SmallSlot(), flags, (ulong)_rng.Next(0, 4096) * Page, pages * Page,
            UaddrBase + (ulong)_rng.Next(0, 1 << 20) * Page, handle, offset);
    }
}
