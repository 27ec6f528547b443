namespace S2Lab.Arch.Translation;

/// <summary>Translation granule (VTCR_EL2.TG0). The value is log2 of the granule size in bytes.</summary>
public enum Granule
{
    /// <summary>4 KiB granule, TG0 = 0b00.</summary>
    Size4K = 12,

    /// <summary>16 KiB granule, TG0 = 0b10.</summary>
    Size16K = 14,

    /// <summary>64 KiB granule, TG0 = 0b01.</summary>
    Size64K = 16,
}

/// <summary>Level arithmetic for a granule (docs/arm-reference.md#levels).</summary>
public static class GranuleExtensions
{
    /// <summary>log2 of the granule size (12, 14, 16).</summary>
    public static int Shift(this Granule g) => (int)g;

    /// <summary>Granule size in bytes.</summary>
    public static ulong Bytes(this Granule g) => 1UL << (int)g;

    /// <summary>Index bits resolved per level: granule bits − 3 (9, 11, 13).</summary>
    public static int Stride(this Granule g) => (int)g - 3;

    /// <summary>Descriptors in one (non-concatenated) table: 512, 2048, 8192.</summary>
    public static int EntriesPerTable(this Granule g) => 1 << ((int)g - 3);

    /// <summary>log2 of the address range one descriptor at <paramref name="level"/> maps (level −1..3).</summary>
    public static int LevelShift(this Granule g, int level) => (int)g + (3 - level) * ((int)g - 3);

    /// <summary>Bytes one descriptor at <paramref name="level"/> maps.</summary>
    public static ulong LevelSize(this Granule g, int level) => 1UL << g.LevelShift(level);

    /// <summary>The TG0 field encoding of VTCR_EL2 (00 4K, 01 64K, 10 16K).</summary>
    public static int Tg0Encoding(this Granule g) => g switch
    {
        Granule.Size4K => 0b00,
        Granule.Size64K => 0b01,
        Granule.Size16K => 0b10,
        _ => throw new ArgumentOutOfRangeException(nameof(g)),
    };

    /// <summary>
    /// Linux KVM_PGTABLE_MIN_BLOCK_LEVEL: the highest level at which KVM places a block (1 with 4K pages, 2 with 16K/64K).
    /// Blocks at the other architecturally allowed levels (4K level 0 with DS, 16K level 1 with DS, 64K level 1 with
    /// 52-bit PA) are not used by KVM; see <see cref="Stage2Geometry.BlockAllowedAtLevel"/> for the architectural rule.
    /// </summary>
    public static int KvmMinBlockLevel(this Granule g) => g == Granule.Size4K ? 1 : 2;

    /// <summary>Short name: "4K", "16K", "64K".</summary>
    public static string Name(this Granule g) => g switch
    {
        Granule.Size4K => "4K",
        Granule.Size16K => "16K",
        Granule.Size64K => "64K",
        _ => g.ToString(),
    };
}
