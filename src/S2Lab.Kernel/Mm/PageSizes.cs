namespace S2Lab.Kernel.Mm;

/// <summary>Page and block sizes of the modelled kernel: 4K pages, so PMD = 2 MiB and PUD = 1 GiB.</summary>
public static class PageSizes
{
    public const int PAGE_SHIFT = 12;
    public const ulong PAGE_SIZE = 1UL << PAGE_SHIFT;
    public const int PMD_SHIFT = 21;
    public const ulong PMD_SIZE = 1UL << PMD_SHIFT;
    public const int PUD_SHIFT = 30;
    public const ulong PUD_SIZE = 1UL << PUD_SHIFT;

    /// <summary>arm64 contiguous-bit hugetlb sizes with 4K pages: 16 PTEs (64 KiB) and 16 PMDs (32 MiB).</summary>
    public const int CONT_PTE_SHIFT = PAGE_SHIFT + 4;
    public const ulong CONT_PTE_SIZE = 1UL << CONT_PTE_SHIFT;
    public const int CONT_PMD_SHIFT = PMD_SHIFT + 4;
    public const ulong CONT_PMD_SIZE = 1UL << CONT_PMD_SHIFT;

    /// <summary>True if <paramref name="x"/> is a multiple of <paramref name="size"/> (a power of two).</summary>
    public static bool IsAligned(ulong x, ulong size) => (x & (size - 1)) == 0;

    /// <summary>Rounds down to a multiple of <paramref name="size"/> (a power of two).</summary>
    public static ulong AlignDown(ulong x, ulong size) => x & ~(size - 1);

    /// <summary>Rounds up to a multiple of <paramref name="size"/> (a power of two).</summary>
    public static ulong AlignUp(ulong x, ulong size) => (x + size - 1) & ~(size - 1);

    /// <summary>A size in bytes, in the largest binary unit that divides it (4K, 2M, 1G).</summary>
    public static string Format(ulong size) =>
        size == 0 ? "0" :
        size % (1UL << 40) == 0 ? $"{size >> 40}T" :
        size % (1UL << 30) == 0 ? $"{size >> 30}G" :
        size % (1UL << 20) == 0 ? $"{size >> 20}M" :
        size % (1UL << 10) == 0 ? $"{size >> 10}K" : $"{size}";
}
