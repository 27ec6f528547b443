namespace S2Lab.Arch.Caches;

/// <summary>Cache line geometry shared by every cache in the model.</summary>
public static class CacheLine
{
    /// <summary>
    /// Bytes per line: 64, the D-cache and I-cache line (CTR_EL0.DminLine = IminLine = 4, i.e. 16 words) and the Cache
    /// Write-back Granule of the Neoverse cores S2Lab models. A write-back always writes a whole line.
    /// </summary>
    public const int Size = 64;

    /// <summary>log2 of <see cref="Size"/>.</summary>
    public const int Shift = 6;

    /// <summary>The line-aligned address of the line holding <paramref name="pa"/>.</summary>
    public static ulong Align(ulong pa) => pa & ~(ulong)(Size - 1);
}

/// <summary>
/// The memory behind the point of coherency (PoC): what every agent sees once nothing is held in a cache above it.
/// The model reads and writes it only in whole, aligned 64-byte lines; a line never written reads as zeros.
/// The host kernel's physical memory implements this; <see cref="SparseLineMemory"/> is a small one for tests.
/// </summary>
public interface IPointOfCoherence
{
    /// <summary>Copies the 64 bytes of the line at <paramref name="linePa"/> (aligned) into <paramref name="line"/>.</summary>
    void ReadLine(ulong linePa, Span<byte> line);

    /// <summary>Replaces the 64 bytes of the line at <paramref name="linePa"/> (aligned) with <paramref name="line"/>.</summary>
    void WriteLine(ulong linePa, ReadOnlySpan<byte> line);

    /// <summary>
    /// Copies the consecutive lines from <paramref name="linePa"/> (aligned) into <paramref name="lines"/> (a whole number
    /// of lines): the same bytes as <see cref="ReadLine"/> line by line. A sparse store overrides it to look up each page
    /// once rather than each line.
    /// </summary>
    void ReadLines(ulong linePa, Span<byte> lines)
    {
        for (var i = 0; i < lines.Length; i += CacheLine.Size)
        {
            ReadLine(linePa + (ulong)i, lines.Slice(i, CacheLine.Size));
        }
    }
}

/// <summary>Byte-granular helpers over a line-granular <see cref="IPointOfCoherence"/>.</summary>
public static class PointOfCoherenceExtensions
{
    /// <summary>Reads <paramref name="dest"/>.Length bytes at <paramref name="pa"/> (any alignment, may cross lines).</summary>
    public static void ReadBytes(this IPointOfCoherence memory, ulong pa, Span<byte> dest)
    {
        Span<byte> line = stackalloc byte[CacheLine.Size];
        while (!dest.IsEmpty)
        {
            var linePa = CacheLine.Align(pa);
            var offset = (int)(pa - linePa);
            var n = Math.Min(CacheLine.Size - offset, dest.Length);
            memory.ReadLine(linePa, line);
            line.Slice(offset, n).CopyTo(dest);
            dest = dest[n..];
            pa += (ulong)n;
        }
    }

    /// <summary>Writes <paramref name="src"/> at <paramref name="pa"/> (read-modify-write of each line it touches).</summary>
    public static void WriteBytes(this IPointOfCoherence memory, ulong pa, ReadOnlySpan<byte> src)
    {
        Span<byte> line = stackalloc byte[CacheLine.Size];
        while (!src.IsEmpty)
        {
            var linePa = CacheLine.Align(pa);
            var offset = (int)(pa - linePa);
            var n = Math.Min(CacheLine.Size - offset, src.Length);
            if (n < CacheLine.Size)
            {
                memory.ReadLine(linePa, line);
            }

            src[..n].CopyTo(line[offset..]);
            memory.WriteLine(linePa, line);
            src = src[n..];
            pa += (ulong)n;
        }
    }
}

/// <summary>
/// An <see cref="IPointOfCoherence"/> that stores only the lines written (a dictionary of 64-byte arrays), for tests
/// and benchmarks. Lines never written read as zeros.
/// </summary>
public sealed class SparseLineMemory : IPointOfCoherence
{
    private readonly Dictionary<ulong, byte[]> _lines = [];

    /// <summary>Lines stored (written at least once).</summary>
    public int LineCount => _lines.Count;

    /// <summary>Whole-line writes received (by the cache's write-backs and by bypassing writes).</summary>
    public long LineWrites { get; private set; }

    public void ReadLine(ulong linePa, Span<byte> line)
    {
        CheckLine(linePa, line.Length);
        if (_lines.TryGetValue(linePa, out var stored))
        {
            stored.CopyTo(line);
        }
        else
        {
            line.Clear();
        }
    }

    public void WriteLine(ulong linePa, ReadOnlySpan<byte> line)
    {
        CheckLine(linePa, line.Length);
        if (!_lines.TryGetValue(linePa, out var stored))
        {
            stored = new byte[CacheLine.Size];
            _lines.Add(linePa, stored);
        }

        line.CopyTo(stored);
        LineWrites++;
    }

    private static void CheckLine(ulong linePa, int length)
    {
        if ((linePa & (CacheLine.Size - 1)) != 0)
        {
            throw new ArgumentException($"line address 0x{linePa:X} is not 64-byte aligned", nameof(linePa));
        }

        if (length != CacheLine.Size)
        {
            throw new ArgumentException($"a line is 64 bytes, not {length}", nameof(length));
        }
    }
}
