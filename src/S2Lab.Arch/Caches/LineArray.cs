using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace S2Lab.Arch.Caches;

/// <summary>The state of one line in a cache.</summary>
public enum LineState : byte
{
    /// <summary>Not held.</summary>
    Invalid,

    /// <summary>Held, and the model wrote nothing to it that the PoC lacks (it can still be stale: see the README).</summary>
    Clean,

    /// <summary>Held with data not yet written back to the PoC.</summary>
    Dirty,
}

/// <summary>
/// A set-associative array of 64-byte lines with a fixed number of sets and ways, allocated once: its size never depends
/// on how much memory is accessed. Sets are indexed by the low bits of the line number (physically indexed).
/// Replacement: an invalid way, else the least recently used clean way, else the least recently used dirty way.
/// </summary>
internal sealed class LineArray
{
    private readonly int _ways;
    private readonly ulong _setMask;
    /// <summary>The line number an invalid slot holds (no physical address has it: line numbers are below 2^58).</summary>
    private const ulong NoLine = ulong.MaxValue;

    private readonly ulong[] _lineNumbers;
    private readonly LineState[] _states;
    private readonly ulong[] _lastUse;
    private readonly byte[] _data;
    private ulong _clock;

    public LineArray(int lines, int ways)
    {
        _ways = ways;
        _setMask = (ulong)(lines / ways) - 1;
        _lineNumbers = new ulong[lines];
        Array.Fill(_lineNumbers, NoLine);
        _states = new LineState[lines];
        _lastUse = new ulong[lines];
        _data = new byte[lines * CacheLine.Size];
    }

    /// <summary>Lines that are not invalid.</summary>
    public int Occupied { get; private set; }

    public int Capacity => _states.Length;

    /// <summary>The slot holding <paramref name="lineNumber"/> (PA &gt;&gt; 6), or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(ulong lineNumber)
    {
        // An invalid slot holds NoLine, which no line number equals: one array is compared.
        // The set's ways lie inside the array (sets * ways == lines), so the look-up needs no bounds check.
        var first = (int)(lineNumber & _setMask) * _ways;
        ref var way = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_lineNumbers), first);
        for (var w = 0; w < _ways; w++)
        {
            if (Unsafe.Add(ref way, w) == lineNumber)
            {
                return first + w;
            }
        }

        return -1;
    }

    /// <summary>
    /// The slot to fill with <paramref name="lineNumber"/> (not present): an invalid way, else the LRU clean way, else the
    /// LRU dirty way. The caller writes a dirty victim back before calling <see cref="Install"/>.
    /// </summary>
    public int Victim(ulong lineNumber)
    {
        var first = (int)(lineNumber & _setMask) * _ways;
        int clean = -1, dirty = -1;
        for (var slot = first; slot < first + _ways; slot++)
        {
            switch (_states[slot])
            {
                case LineState.Invalid:
                    return slot;
                case LineState.Clean when clean < 0 || _lastUse[slot] < _lastUse[clean]:
                    clean = slot;
                    break;
                case LineState.Dirty when dirty < 0 || _lastUse[slot] < _lastUse[dirty]:
                    dirty = slot;
                    break;
            }
        }

        return clean >= 0 ? clean : dirty;
    }

    public ulong LineNumber(int slot) => _lineNumbers[slot];

    public LineState State(int slot) => _states[slot];

    public Span<byte> Data(int slot) => _data.AsSpan(slot * CacheLine.Size, CacheLine.Size);

    /// <summary>The first byte of <paramref name="slot"/>'s line, for a caller that has checked its offsets against the line size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref byte DataRef(int slot) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_data), slot * CacheLine.Size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Touch(int slot) => _lastUse[slot] = ++_clock;

    public void SetState(int slot, LineState state)
    {
        if (_states[slot] == LineState.Invalid && state != LineState.Invalid)
        {
            Occupied++;
        }
        else if (_states[slot] != LineState.Invalid && state == LineState.Invalid)
        {
            Occupied--;
        }

        _states[slot] = state;
        if (state == LineState.Invalid)
        {
            _lineNumbers[slot] = NoLine;
        }
    }

    /// <summary>Makes <paramref name="slot"/> hold <paramref name="lineNumber"/> in <paramref name="state"/>; the caller fills the data.</summary>
    public void Install(int slot, ulong lineNumber, LineState state)
    {
        _lineNumbers[slot] = lineNumber;
        SetState(slot, state);
        Touch(slot);
    }

    /// <summary>Every slot not invalid, in slot order.</summary>
    public IEnumerable<int> ValidSlots()
    {
        for (var slot = 0; slot < _states.Length; slot++)
        {
            if (_states[slot] != LineState.Invalid)
            {
                yield return slot;
            }
        }
    }

    /// <summary>Invalidates every line (I-cache invalidate all; never used on a data cache holding dirty lines).</summary>
    public void Clear()
    {
        Array.Clear(_states);
        Array.Fill(_lineNumbers, NoLine);
        Occupied = 0;
    }
}
