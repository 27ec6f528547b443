using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Caches;

/// <summary>How the effective attributes of a data access let the data cache hold the line.</summary>
public enum DataCaching : byte
{
    /// <summary>Device, or Normal Inner and Outer Non-cacheable: the access goes around the cache (D7.5.1).</summary>
    None,

    /// <summary>Normal, cacheable, no half Write-Back: reads allocate; writes update the line and the PoC.</summary>
    WriteThrough,

    /// <summary>Normal with a Write-Back half: writes dirty the line, which reaches the PoC only when written back.</summary>
    WriteBack,
}

/// <summary>The route an access took (for multi-line accesses: a miss if any line missed).</summary>
public enum AccessPath : byte
{
    /// <summary>A cacheable data access that found its line(s) in the data cache.</summary>
    DataCacheHit,

    /// <summary>A cacheable data access that allocated at least one line (filled from the PoC).</summary>
    DataCacheMiss,

    /// <summary>A Non-cacheable or Device access by a CPU, or a non-coherent device: straight to the PoC.</summary>
    Bypass,

    /// <summary>A coherent device: the PoC, plus any copy the data cache holds.</summary>
    Snoop,

    /// <summary>An instruction fetch that found its line(s) in the CPU's I-cache.</summary>
    InstructionCacheHit,

    /// <summary>An instruction fetch that filled at least one I-cache line.</summary>
    InstructionCacheMiss,

    /// <summary>An instruction fetch the I-cache does not hold (CTR_EL0.DIC, or Non-cacheable when not held).</summary>
    InstructionUncached,
}

/// <summary>
/// A cache maintenance instruction by address: the data cache ones to the PoC (D7.5.9) and the instruction cache one to
/// the PoU (D7.5.7). Stage-2 tables ask for DC CIVAC and IC IVAU (docs/arm-reference.md#cmo); guests may use any.
/// </summary>
public enum CacheOp : byte
{
    /// <summary>DC CVAC: write a dirty line back; it stays, clean.</summary>
    DcCvac,

    /// <summary>DC CIVAC: write a dirty line back, then drop it (dcache_clean_inval_poc).</summary>
    DcCivac,

    /// <summary>DC IVAC: drop the line; dirty data in it is lost.</summary>
    DcIvac,

    /// <summary>IC IVAU: invalidate the line in every CPU's I-cache (icache_inval_pou).</summary>
    IcIvau,
}

/// <summary>Operations on <see cref="CacheOp"/>.</summary>
public static class CacheOps
{
    /// <summary>
    /// The operation a DC executed at EL1 performs: with HCR_EL2.VM=1 an invalidate is a clean and invalidate (so a guest
    /// cannot discard data the hypervisor or another VM wrote; Arm ARM DC IVAC, relied on by the RMM spec A5.2.11).
    /// </summary>
    public static CacheOp AtEl1(CacheOp op, bool hcrVm) =>
        hcrVm && op == CacheOp.DcIvac ? CacheOp.DcCivac : op;

    /// <summary>"DC CVAC", "DC CIVAC", "DC IVAC", "IC IVAU".</summary>
    public static string Mnemonic(this CacheOp op) => op switch
    {
        CacheOp.DcCvac => "DC CVAC",
        CacheOp.DcIvac => "DC IVAC",
        CacheOp.IcIvau => "IC IVAU",
        _ => "DC CIVAC",
    };
}

/// <summary>What a <see cref="CacheSystem"/> did, for reports and benchmarks.</summary>
public sealed class CacheCounters
{
    public long DataHits { get; internal set; }
    public long DataMisses { get; internal set; }
    public long Bypasses { get; internal set; }
    public long Snoops { get; internal set; }

    /// <summary>Dirty lines written to the PoC (by a clean, an eviction, or eager write-back).</summary>
    public long WriteBacks { get; internal set; }

    /// <summary>Lines removed to make room (capacity evictions), not counting explicit ones.</summary>
    public long CapacityEvictions { get; internal set; }

    /// <summary>Lines allocated by <see cref="CacheSystem.Prefetch"/> or by the speculation hook.</summary>
    public long SpeculativeFills { get; internal set; }

    /// <summary>Dirty lines an invalidate (DC IVAC) discarded.</summary>
    public long DiscardedDirtyLines { get; internal set; }

    public long InstructionHits { get; internal set; }
    public long InstructionMisses { get; internal set; }
}

/// <summary>
/// A data-carrying model of the caches between the agents of one host and its point of coherency (see README.md):
/// one data cache shared by every CPU (coherent among cacheable accesses), one instruction cache per CPU, and the PoC
/// behind them (<see cref="IPointOfCoherence"/>). Cacheable accesses go through the data cache; Non-cacheable and Device
/// accesses, and non-coherent devices, go around it; coherent devices snoop it. Sizes are fixed at construction.
/// Deterministic: the same calls give the same bytes. Not thread-safe.
/// </summary>
public sealed class CacheSystem
{
    private readonly IPointOfCoherence _memory;
    private readonly LineArray _data;
    private readonly Dictionary<int, LineArray> _instruction = [];
    private readonly byte[] _scratch = new byte[CacheLine.Size];

    /// <summary>A cache system in front of <paramref name="memory"/>.</summary>
    /// <exception cref="ArgumentException">The options have an impossible geometry.</exception>
    public CacheSystem(IPointOfCoherence memory, CacheOptions? options = null)
    {
        _memory = memory;
        Options = options ?? new CacheOptions();
        if (Options.Validate() is { } error)
        {
            throw new ArgumentException(error, nameof(options));
        }

        _data = new LineArray(Options.DataLines, Options.DataWays);
    }

    public CacheOptions Options { get; }

    public CacheCounters Counters { get; } = new();

    /// <summary>The PoC behind the caches.</summary>
    public IPointOfCoherence Memory => _memory;

    /// <summary>Lines the data cache holds now (at most <see cref="CacheOptions.DataLines"/>).</summary>
    public int DataLinesHeld => _data.Occupied;

    /// <summary>How the data cache treats an access with these effective attributes.</summary>
    public static DataCaching CachingOf(in MemoryAttributes attributes)
    {
        if (attributes.IsNonCacheable)
        {
            return DataCaching.None;
        }

        // One half Write-Back is enough for dirty data to sit above the PoC (in the inner or the outer cache).
        return attributes.Inner.Cacheability == Cacheability.WriteBack || attributes.Outer.Cacheability == Cacheability.WriteBack
            ? DataCaching.WriteBack
            : DataCaching.WriteThrough;
    }

    /// <summary>
    /// The hit case of <see cref="Read"/> alone, for a caller that knows its access is a CPU's cacheable data read (a
    /// vCPU's fast path): when the bytes lie in one line the data cache holds, copies them and returns true; otherwise
    /// does nothing and returns false (call <see cref="Read"/>).
    /// </summary>
    public bool TryReadHit(ulong pa, Span<byte> dest)
    {
        var lineOffset = (int)(pa & (CacheLine.Size - 1));
        if (lineOffset + dest.Length > CacheLine.Size)
        {
            return false;
        }

        var held = _data.Find(pa >> CacheLine.Shift);
        if (held < 0)
        {
            return false;
        }

        Counters.DataHits++;
        _data.Touch(held);
        // In bounds: lineOffset + dest.Length <= the line size (checked above). A guest's doubleword is one load.
        ref var src = ref Unsafe.Add(ref _data.DataRef(held), lineOffset);
        if (dest.Length == sizeof(ulong))
        {
            Unsafe.WriteUnaligned(ref MemoryMarshal.GetReference(dest), Unsafe.ReadUnaligned<ulong>(ref src));
        }
        else
        {
            MemoryMarshal.CreateReadOnlySpan(ref src, dest.Length).CopyTo(dest);
        }

        return true;
    }

    /// <summary>A data read of <paramref name="dest"/>.Length bytes at <paramref name="pa"/>.</summary>
    /// <param name="who">The agent reading.</param>
    /// <param name="pa">Physical address (any alignment; may cross lines).</param>
    /// <param name="attributes">The effective attributes of the access (ignored for devices).</param>
    /// <param name="dest">Receives the bytes.</param>
    public AccessPath Read(Accessor who, ulong pa, in MemoryAttributes attributes, Span<byte> dest)
    {
        var caching = who.Kind == AccessorKind.Cpu ? CachingOf(attributes) : DataCaching.None;

        // The common case first (a guest's load that hits): a CPU's cacheable access within one held line.
        if (caching != DataCaching.None && TryReadHit(pa, dest))
        {
            return AccessPath.DataCacheHit;
        }

        if (who.Kind == AccessorKind.CoherentDevice)
        {
            Counters.Snoops++;
            for (var c = new LineChunks(pa, dest.Length); c.MoveNext();)
            {
                var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
                var slot = _data.Find(linePa >> CacheLine.Shift);
                if (slot >= 0)
                {
                    _data.Data(slot).Slice(offset, n).CopyTo(dest.Slice(index, n));
                }
                else
                {
                    _memory.ReadBytes(linePa + (ulong)offset, dest.Slice(index, n));
                }
            }

            return AccessPath.Snoop;
        }

        if (caching == DataCaching.None)
        {
            Counters.Bypasses++;
            _memory.ReadBytes(pa, dest);
            return AccessPath.Bypass;
        }

        var missed = false;
        BeginWindow(pa, dest.Length);
        for (var c = new LineChunks(pa, dest.Length); c.MoveNext();)
        {
            var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
            var slot = Lookup(linePa, out var hit);
            missed |= !hit;
            _data.Data(slot).Slice(offset, n).CopyTo(dest.Slice(index, n));
        }

        EndWindow();
        return missed ? AccessPath.DataCacheMiss : AccessPath.DataCacheHit;
    }

    /// <summary>A data write of <paramref name="src"/> at <paramref name="pa"/>.</summary>
    /// <param name="who">The agent writing.</param>
    /// <param name="pa">Physical address (any alignment; may cross lines).</param>
    /// <param name="attributes">The effective attributes of the access (ignored for devices).</param>
    /// <param name="src">The bytes written.</param>
    public AccessPath Write(Accessor who, ulong pa, in MemoryAttributes attributes, ReadOnlySpan<byte> src)
    {
        // The common case first (a guest's store that hits): a CPU's Write-Back store within one held line.
        var lineOffset = (int)(pa & (CacheLine.Size - 1));
        if (who.Kind == AccessorKind.Cpu && lineOffset + src.Length <= CacheLine.Size && Options.DirtyLines == DirtyLinePolicy.Retain &&
            CachingOf(attributes) == DataCaching.WriteBack)
        {
            var held = _data.Find(pa >> CacheLine.Shift);
            if (held >= 0)
            {
                Counters.DataHits++;
                _data.Touch(held);
                src.CopyTo(_data.Data(held)[lineOffset..]);
                _data.SetState(held, LineState.Dirty);
                return AccessPath.DataCacheHit;
            }
        }

        var caching = who.Kind == AccessorKind.Cpu ? CachingOf(attributes) : DataCaching.None;
        if (who.Kind == AccessorKind.CoherentDevice)
        {
            Counters.Snoops++;
            for (var c = new LineChunks(pa, src.Length); c.MoveNext();)
            {
                var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
                var slot = _data.Find(linePa >> CacheLine.Shift);
                if (slot >= 0)
                {
                    // The snooped copy takes the new bytes; a clean copy stays equal to the PoC, a dirty one stays dirty.
                    src.Slice(index, n).CopyTo(_data.Data(slot)[offset..]);
                    if (_data.State(slot) == LineState.Dirty)
                    {
                        continue;
                    }
                }

                _memory.WriteBytes(linePa + (ulong)offset, src.Slice(index, n));
            }

            return AccessPath.Snoop;
        }

        if (caching == DataCaching.None)
        {
            // Around the cache: a line held for this address is neither updated nor invalidated (B2.11).
            Counters.Bypasses++;
            _memory.WriteBytes(pa, src);
            return AccessPath.Bypass;
        }

        var missed = false;
        BeginWindow(pa, src.Length);
        for (var c = new LineChunks(pa, src.Length); c.MoveNext();)
        {
            var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
            // Every cacheable write allocates (allocation hints are only hints: D7.5.3). A write of the whole line
            // replaces every byte of the fill, so the fill's bytes are not read from the PoC.
            var slot = Lookup(linePa, out var hit, fill: n < CacheLine.Size);
            missed |= !hit;
            src.Slice(index, n).CopyTo(_data.Data(slot)[offset..]);
            if (caching == DataCaching.WriteThrough)
            {
                // Write-through: the written bytes (only those) also go to the PoC; the line stays clean.
                _memory.WriteBytes(linePa + (ulong)offset, src.Slice(index, n));
            }
            else
            {
                _data.SetState(slot, LineState.Dirty);
                if (Options.DirtyLines == DirtyLinePolicy.WriteBackEagerly)
                {
                    WriteBack(slot);
                }
            }
        }

        EndWindow();
        return missed ? AccessPath.DataCacheMiss : AccessPath.DataCacheHit;
    }

    /// <summary>
    /// An instruction fetch by CPU <paramref name="who"/>. <paramref name="attributes"/> are the fetch's effective
    /// attributes (combine with <see cref="AccessKind.InstructionFetch"/>: a fetch from Device is already Normal NC).
    /// The I-cache is filled from the data cache when CTR_EL0.IDC=1 and the fetch is cacheable, else from the PoC.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="who"/> is not a CPU.</exception>
    public AccessPath Fetch(Accessor who, ulong pa, in MemoryAttributes attributes, Span<byte> dest)
    {
        if (who.Kind != AccessorKind.Cpu)
        {
            throw new ArgumentException($"{who} is not a CPU: only CPUs fetch instructions", nameof(who));
        }

        var cacheable = CachingOf(attributes) != DataCaching.None;
        var held = !Options.Dic && (cacheable || (attributes.IsNormal && Options.InstructionCacheHoldsNonCacheable));
        if (!held)
        {
            for (var c = new LineChunks(pa, dest.Length); c.MoveNext();)
            {
                var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
                InstructionFill(linePa, cacheable, _scratch);
                _scratch.AsSpan(offset, n).CopyTo(dest.Slice(index, n));
            }

            return AccessPath.InstructionUncached;
        }

        var icache = InstructionCache(who.Id);
        var missed = false;
        for (var c = new LineChunks(pa, dest.Length); c.MoveNext();)
        {
            var (linePa, offset, index, n) = (c.LinePa, c.Offset, c.Index, c.Length);
            var number = linePa >> CacheLine.Shift;
            var slot = icache.Find(number);
            if (slot >= 0)
            {
                Counters.InstructionHits++;
                icache.Touch(slot);
            }
            else
            {
                Counters.InstructionMisses++;
                missed = true;
                slot = icache.Victim(number);
                icache.Install(slot, number, LineState.Clean);
                InstructionFill(linePa, cacheable, icache.Data(slot));
            }

            icache.Data(slot).Slice(offset, n).CopyTo(dest.Slice(index, n));
        }

        return missed ? AccessPath.InstructionCacheMiss : AccessPath.InstructionCacheHit;
    }

    /// <summary>
    /// A speculative allocation through a cacheable mapping (D7.5.1: such a line can be allocated at any time): the line
    /// is filled from the PoC, clean, unless already held. Returns false (and does nothing) for non-cacheable attributes.
    /// </summary>
    public bool Prefetch(ulong pa, in MemoryAttributes attributes)
    {
        if (CachingOf(attributes) == DataCaching.None)
        {
            return false;
        }

        var linePa = CacheLine.Align(pa);
        if (_data.Find(linePa >> CacheLine.Shift) < 0)
        {
            Counters.SpeculativeFills++;
            Allocate(linePa);
        }

        return true;
    }

    /// <summary>
    /// A cache maintenance instruction by address on every line of [pa, pa+length): a DC to the PoC, or IC IVAU
    /// (<see cref="InvalidateInstructionCache"/>).
    /// </summary>
    /// <remarks>
    /// A DC acts on the line whatever the memory type or cacheability of the mapping used (D7.5.9.14), so a CMO through a
    /// Device or Non-cacheable alias still cleans the cacheable alias's line. Pass the op through
    /// <see cref="CacheOps.AtEl1"/> for a guest's DC.
    /// </remarks>
    public void Maintain(CacheOp op, ulong pa, ulong length = CacheLine.Size)
    {
        if (op == CacheOp.IcIvau)
        {
            InvalidateInstructionCache(pa, length);
            return;
        }

        var first = CacheLine.Align(pa);
        var end = pa + Math.Max(length, 1);
        if ((end - first) / CacheLine.Size > (ulong)_data.Capacity)
        {
            // A range larger than the cache (a 1 GiB block, say): visit the lines held rather than every address. A
            // speculative refill lands in the lowest invalid way of its set, never after the slot being visited.
            for (var slot = 0; slot < _data.Capacity; slot++)
            {
                var linePa = _data.LineNumber(slot) << CacheLine.Shift;
                if (_data.State(slot) != LineState.Invalid && linePa >= first && linePa < end)
                {
                    Maintain(op, slot, linePa);
                }
            }

            return;
        }

        for (var linePa = first; linePa < end; linePa += CacheLine.Size)
        {
            var slot = _data.Find(linePa >> CacheLine.Shift);
            if (slot >= 0)
            {
                Maintain(op, slot, linePa);
            }
        }
    }

    private void Maintain(CacheOp op, int slot, ulong linePa)
    {
        if (op != CacheOp.DcIvac)
        {
            WriteBack(slot);
        }
        else if (_data.State(slot) == LineState.Dirty)
        {
            Counters.DiscardedDirtyLines++;
        }

        if (op != CacheOp.DcCvac)
        {
            _data.SetState(slot, LineState.Invalid);
            if (Options.Speculation?.MayAllocate(linePa) == true)
            {
                Counters.SpeculativeFills++;
                Allocate(linePa);
            }
        }
    }

    /// <summary>
    /// IC IVAU on every line of [pa, pa+length): invalidates the lines in the I-cache of every CPU (it is broadcast to
    /// the Inner Shareable domain, also for Non-cacheable code: D7.5.7).
    /// </summary>
    public void InvalidateInstructionCache(ulong pa, ulong length = CacheLine.Size)
    {
        var first = CacheLine.Align(pa);
        var end = pa + Math.Max(length, 1);
        foreach (var icache in _instruction.Values)
        {
            if ((end - first) / CacheLine.Size > (ulong)icache.Capacity)
            {
                for (var slot = 0; slot < icache.Capacity; slot++)
                {
                    var linePa = icache.LineNumber(slot) << CacheLine.Shift;
                    if (icache.State(slot) != LineState.Invalid && linePa >= first && linePa < end)
                    {
                        icache.SetState(slot, LineState.Invalid);
                    }
                }

                continue;
            }

            for (var linePa = first; linePa < end; linePa += CacheLine.Size)
            {
                var slot = icache.Find(linePa >> CacheLine.Shift);
                if (slot >= 0)
                {
                    icache.SetState(slot, LineState.Invalid);
                }
            }
        }
    }

    /// <summary>IC IALLU on CPU <paramref name="cpu"/>: its whole I-cache (the other CPUs keep theirs).</summary>
    public void InvalidateInstructionCacheAll(int cpu)
    {
        if (_instruction.TryGetValue(cpu, out var icache))
        {
            icache.Clear();
        }
    }

    /// <summary>IC IALLUIS: every CPU's whole I-cache.</summary>
    public void InvalidateInstructionCacheAllInnerShareable()
    {
        foreach (var icache in _instruction.Values)
        {
            icache.Clear();
        }
    }

    /// <summary>
    /// The hardware evicts the line holding <paramref name="pa"/> now (allowed at any time): a dirty line is written back
    /// whole, over whatever bypassing writers put in the PoC meanwhile (B2.11). Returns the state the line had.
    /// </summary>
    public LineState Evict(ulong pa)
    {
        var slot = _data.Find(pa >> CacheLine.Shift);
        if (slot < 0)
        {
            return LineState.Invalid;
        }

        var state = _data.State(slot);
        WriteBack(slot);
        _data.SetState(slot, LineState.Invalid);
        return state;
    }

    /// <summary>Evicts every line of the data cache (dirty ones are written back), in slot order.</summary>
    public void EvictAll()
    {
        foreach (var slot in _data.ValidSlots())
        {
            WriteBack(slot);
            _data.SetState(slot, LineState.Invalid);
        }
    }

    /// <summary>The state of the data-cache line holding <paramref name="pa"/>.</summary>
    public LineState StateOf(ulong pa)
    {
        var slot = _data.Find(pa >> CacheLine.Shift);
        return slot < 0 ? LineState.Invalid : _data.State(slot);
    }

    /// <summary>Copies the data cache's copy of the line holding <paramref name="pa"/>; false if not held.</summary>
    public bool TryPeekLine(ulong pa, Span<byte> line)
    {
        var slot = _data.Find(pa >> CacheLine.Shift);
        if (slot < 0)
        {
            return false;
        }

        _data.Data(slot).CopyTo(line);
        return true;
    }

    /// <summary>
    /// Adds to <paramref name="linePas"/> the address of every line the data cache holds whose bytes are not all zero, in
    /// slot order (for a sparse view of memory: such a line may differ from the PoC).
    /// </summary>
    public void CollectNonZeroLines(List<ulong> linePas)
    {
        foreach (var slot in _data.ValidSlots())
        {
            if (_data.Data(slot).IndexOfAnyExcept((byte)0) >= 0)
            {
                linePas.Add(_data.LineNumber(slot) << CacheLine.Shift);
            }
        }
    }

    /// <summary>
    /// Whether the data cache holds a line of [<paramref name="pa"/>, +<paramref name="length"/>) whose bytes are not all
    /// zero. Looks up each line of the range, so it suits small ranges (a page); <see cref="CollectNonZeroLines"/>
    /// visits the whole cache instead.
    /// </summary>
    public bool HoldsNonZeroLineIn(ulong pa, ulong length)
    {
        if (_data.Occupied == 0 || length == 0)
        {
            return false;
        }

        var end = pa + length;
        for (var linePa = CacheLine.Align(pa); linePa < end; linePa += CacheLine.Size)
        {
            var slot = _data.Find(linePa >> CacheLine.Shift);
            if (slot >= 0 && _data.Data(slot).IndexOfAnyExcept((byte)0) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when CPU <paramref name="cpu"/>'s I-cache holds the line of <paramref name="pa"/>.</summary>
    public bool InstructionCacheHolds(int cpu, ulong pa) =>
        _instruction.TryGetValue(cpu, out var icache) && icache.Find(pa >> CacheLine.Shift) >= 0;

    /// <summary>Splits [pa, pa+length) at line boundaries: each step gives a line, the offset in it, the index in the buffer and the length.</summary>
    private struct LineChunks(ulong pa, int length)
    {
        private ulong _pa = pa;
        private int _next;

        public ulong LinePa { get; private set; }
        public int Offset { get; private set; }
        public int Index { get; private set; }
        public int Length { get; private set; }

        public bool MoveNext()
        {
            Index = _next;
            if (Index >= length)
            {
                return false;
            }

            LinePa = CacheLine.Align(_pa);
            Offset = (int)(_pa - LinePa);
            Length = Math.Min(CacheLine.Size - Offset, length - Index);
            _next = Index + Length;
            _pa += (ulong)Length;
            return true;
        }
    }

    /// <summary>
    /// The data-cache slot of <paramref name="linePa"/>, allocating it on a miss and, unless <paramref name="fill"/> is
    /// false (the caller overwrites the whole line), filling it from the PoC.
    /// </summary>
    private int Lookup(ulong linePa, out bool hit, bool fill = true)
    {
        var slot = _data.Find(linePa >> CacheLine.Shift);
        if (slot >= 0)
        {
            hit = true;
            Counters.DataHits++;
            _data.Touch(slot);
            return slot;
        }

        hit = false;
        Counters.DataMisses++;
        return Allocate(linePa, fill);
    }

    /// <summary>
    /// Allocates <paramref name="linePa"/> (not held): replaces a victim (writing it back if dirty), fills from the PoC
    /// (unless <paramref name="fill"/> is false), clean.
    /// </summary>
    private int Allocate(ulong linePa, bool fill = true)
    {
        var number = linePa >> CacheLine.Shift;
        var slot = _data.Victim(number);
        if (_data.State(slot) != LineState.Invalid)
        {
            Counters.CapacityEvictions++;
            WriteBack(slot);
        }

        _data.Install(slot, number, LineState.Clean);
        if (fill)
        {
            Fill(linePa, _data.Data(slot));
        }

        return slot;
    }

    /// <summary>Writes a dirty line back whole and marks it clean; a clean line is left alone.</summary>
    private void WriteBack(int slot)
    {
        if (_data.State(slot) != LineState.Dirty)
        {
            return;
        }

        Counters.WriteBacks++;
        var linePa = _data.LineNumber(slot) << CacheLine.Shift;
        _memory.WriteLine(linePa, _data.Data(slot));
        if (_windowState == WindowState.Read && linePa - _windowPa < (ulong)_windowLength)
        {
            // The window is a copy of the PoC: it follows the write-back of one of its lines (a tiny cache can evict
            // a line of the access before the access reaches it).
            _data.Data(slot).CopyTo(_window.AsSpan((int)(linePa - _windowPa)));
        }

        _data.SetState(slot, LineState.Clean);
    }

    // The fill window of a multi-line access: the PoC bytes of the lines the access covers, read from the PoC in one
    // call (IPointOfCoherence.ReadLines: one look-up per page in a sparse store, not one per line) at the access's
    // first miss. The bytes are those a line-by-line fill would read: a line is filled at most once per access, and
    // a write-back into the window updates the copy.
    private enum WindowState : byte
    {
        Off,
        Armed,
        Read,
    }

    private byte[] _window = new byte[4096];
    private ulong _windowPa;
    private int _windowLength;
    private WindowState _windowState;

    /// <summary>Arms the fill window for an access of <paramref name="length"/> bytes at <paramref name="pa"/> that crosses a line.</summary>
    private void BeginWindow(ulong pa, int length)
    {
        var first = CacheLine.Align(pa);
        var end = CacheLine.Align(pa + (ulong)length + CacheLine.Size - 1);
        if (end - first <= CacheLine.Size)
        {
            return; // one line: filled directly
        }

        _windowPa = first;
        _windowLength = (int)(end - first);
        if (_window.Length < _windowLength)
        {
            _window = new byte[Math.Max(_windowLength, _window.Length * 2)];
        }

        _windowState = WindowState.Armed;
    }

    private void EndWindow() => _windowState = WindowState.Off;

    /// <summary>Fills one line from the PoC: from the window when the access has one, else line by line.</summary>
    private void Fill(ulong linePa, Span<byte> line)
    {
        if (_windowState != WindowState.Off && linePa - _windowPa < (ulong)_windowLength)
        {
            if (_windowState == WindowState.Armed)
            {
                _memory.ReadLines(_windowPa, _window.AsSpan(0, _windowLength));
                _windowState = WindowState.Read;
            }

            _window.AsSpan((int)(linePa - _windowPa), CacheLine.Size).CopyTo(line);
            return;
        }

        _memory.ReadLine(linePa, line);
    }

    /// <summary>Where an I-cache line fill reads from: the data cache's copy with IDC and a cacheable fetch, else the PoC.</summary>
    private void InstructionFill(ulong linePa, bool cacheable, Span<byte> line)
    {
        if (Options.Idc && cacheable)
        {
            var slot = _data.Find(linePa >> CacheLine.Shift);
            if (slot >= 0)
            {
                _data.Data(slot).CopyTo(line);
                return;
            }
        }

        _memory.ReadLine(linePa, line);
    }

    private LineArray InstructionCache(int cpu)
    {
        if (!_instruction.TryGetValue(cpu, out var icache))
        {
            icache = new LineArray(Options.InstructionLines, Options.InstructionWays);
            _instruction.Add(cpu, icache);
        }

        return icache;
    }
}
