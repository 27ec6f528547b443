namespace S2Lab.Arch.Translation;

/// <summary>
/// The shape of a stage-2 walk for a valid VTCR_EL2 (docs/arm-reference.md#levels): granule, IPA size, start
/// level, concatenated start-level tables, output-address size and format. Built only by <see cref="VtcrEl2.Validate"/>.
/// </summary>
public sealed class Stage2Geometry
{
    internal Stage2Geometry(VtcrEl2 vtcr, Granule granule, int ipaBits, int startLevel, int oaBits, S2AddressFormat format)
    {
        Vtcr = vtcr;
        Granule = granule;
        IpaBits = ipaBits;
        StartLevel = startLevel;
        OaBits = oaBits;
        AddressFormat = format;
        GranuleShift = granule.Shift();
        Stride = granule.Stride();
        EntriesPerTable = 1 << Stride;
        RootEntries = 1 << (ipaBits - granule.LevelShift(startLevel));
        ConcatenatedTables = Math.Max(1, RootEntries >> Stride);
    }

    /// <summary>The register this geometry was derived from.</summary>
    public VtcrEl2 Vtcr { get; }

    public Granule Granule { get; }

    /// <summary>IPA size in bits (64 − T0SZ).</summary>
    public int IpaBits { get; }

    /// <summary>First level of the walk (−1..3).</summary>
    public int StartLevel { get; }

    /// <summary>Levels walked: 4 − start level.</summary>
    public int Levels => 4 - StartLevel;

    /// <summary>Output address size: min(PS, PAMax), at most 48 unless a 52-bit format is in use.</summary>
    public int OaBits { get; }

    public S2AddressFormat AddressFormat { get; }

    public int GranuleShift { get; }

    /// <summary>Granule bits − 3.</summary>
    public int Stride { get; }

    /// <summary>Descriptors per non-root table.</summary>
    public int EntriesPerTable { get; }

    /// <summary>Descriptors in the (possibly concatenated) start-level table: 2^(IA − level shift of the start level).</summary>
    public int RootEntries { get; }

    /// <summary>Concatenated start-level tables (1 when not concatenated, 2..16 otherwise).</summary>
    public int ConcatenatedTables { get; }

    /// <summary>Bytes of one granule-sized table.</summary>
    public ulong TableBytes => 1UL << GranuleShift;

    /// <summary>Bytes of the start-level table(s): at least one granule, also when the start level needs fewer entries.</summary>
    public ulong RootTableBytes => (ulong)ConcatenatedTables << GranuleShift;

    /// <summary>Size of the IPA space, 2^IpaBits.</summary>
    public ulong IpaSpace => 1UL << IpaBits;

    /// <summary>log2 of the bytes one descriptor at <paramref name="level"/> maps.</summary>
    public int LevelShift(int level) => Granule.LevelShift(level);

    /// <summary>Bytes one descriptor at <paramref name="level"/> maps.</summary>
    public ulong LevelSize(int level) => 1UL << Granule.LevelShift(level);

    /// <summary>The index of <paramref name="ipa"/> in the table at <paramref name="level"/> (wider at a concatenated start level).</summary>
    public int Index(ulong ipa, int level) =>
        (int)((ipa >> LevelShift(level)) & (ulong)((level == StartLevel ? RootEntries : EntriesPerTable) - 1));

    /// <summary>
    /// The architecture allows a block at <paramref name="level"/> (docs/arm-reference.md#levels): 4K at levels 1 and 2 (level 0 with DS);
    /// 16K at level 2 (level 1 with DS); 64K at level 2 (level 1 with 52-bit PA). Level 3 holds pages.
    /// </summary>
    public bool BlockAllowedAtLevel(int level) => (Granule, level) switch
    {
        (_, 2) => true,
        (Granule.Size4K, 1) => true,
        (Granule.Size4K, 0) => AddressFormat == S2AddressFormat.Lpa2,
        (Granule.Size16K, 1) => AddressFormat == S2AddressFormat.Lpa2,
        (Granule.Size64K, 1) => AddressFormat == S2AddressFormat.Lpa64K,
        _ => false,
    };

    /// <summary>Linux KVM_PGTABLE_MIN_BLOCK_LEVEL for this granule, never above the architectural limit.</summary>
    public int MinBlockLevel => Granule.KvmMinBlockLevel();

    /// <summary>The leaf level for a mapping size (granule → 3, one level up per stride), or −1 if the size is not a level size.</summary>
    public int LevelForSize(ulong size)
    {
        for (int level = 3; level >= StartLevel; level--)
        {
            if (LevelSize(level) == size)
            {
                return level;
            }
        }

        return -1;
    }

    public override string ToString() =>
        $"{Granule.Name()} granule, {IpaBits}-bit IPA, start level {StartLevel}" +
        (ConcatenatedTables > 1 ? $" ({ConcatenatedTables} concatenated tables)" : "") + $", {OaBits}-bit OA";
}
