using S2Lab.Arch.Attributes;

namespace S2Lab.Kernel.Arm64;

/// <summary>One cell of <see cref="CombineTable.LinuxVsKvm"/>: a Linux stage-1 type over a KVM stage-2 type.</summary>
/// <param name="S1Name">The Linux MT_* macro.</param>
/// <param name="S1Attr">Its MAIR byte (with MTE, MT_NORMAL_TAGGED is 0xF0).</param>
/// <param name="S2Type">The KVM stage-2 type.</param>
/// <param name="Fwb">HCR_EL2.FWB (and so whether the MT_S2_FWB_* value is used).</param>
/// <param name="S2Name">The MT_S2_* or MT_S2_FWB_* macro.</param>
/// <param name="S2MemAttr">Its MemAttr value.</param>
/// <param name="Result">The effective attributes (S1 and S2 SH both ISH).</param>
public sealed record CombineTableCell(string S1Name, byte S1Attr, KvmS2MemType S2Type, bool Fwb, string S2Name, byte S2MemAttr, CombineResult Result);

/// <summary>Tables of effective memory types for the encodings Linux and KVM actually use.</summary>
public static class CombineTable
{
    /// <summary>The KVM stage-2 types shown by default: Normal, Normal-NC, Device-nGnRE.</summary>
    public static IReadOnlyList<KvmS2MemType> DefaultS2Types { get; } = [KvmS2MemType.Normal, KvmS2MemType.NormalNc, KvmS2MemType.DeviceNGnRE];

    /// <summary>
    /// Every Linux stage-1 type (MT_*, MAIR_EL1 with MTE when <paramref name="mte"/>) against every stage-2 type in
    /// <paramref name="s2Types"/> (default <see cref="DefaultS2Types"/>), for FWB=0 and FWB=1, with both SH fields ISH,
    /// data accesses, stage-1 MMU and caches on. Rows in MT_* order; within a row, FWB=0 cells first.
    /// </summary>
    public static IReadOnlyList<CombineTableCell> LinuxVsKvm(bool mte = true, IReadOnlyList<KvmS2MemType>? s2Types = null)
    {
        s2Types ??= DefaultS2Types;
        var features = mte ? AttributeFeatures.Mte2 : AttributeFeatures.None;
        var cells = new List<CombineTableCell>(LinuxMair.Types.Count * s2Types.Count * 2);
        foreach (var (name, index) in LinuxMair.Types)
        {
            var s1 = LinuxMair.AttrFor(index, mte);
            foreach (var fwb in (ReadOnlySpan<bool>)[false, true])
            {
                foreach (var type in s2Types)
                {
                    var memAttr = KvmS2MemAttr.PageS2MemAttr(type, fwb);
                    var input = new CombineInput(s1, Shareability.ISH, memAttr, Shareability.ISH, fwb) { Features = features };
                    cells.Add(new CombineTableCell(name, s1, type, fwb, KvmS2MemAttr.Name(type, fwb), memAttr, AttributeCombiner.Combine(input)));
                }
            }
        }

        return cells;
    }
}
