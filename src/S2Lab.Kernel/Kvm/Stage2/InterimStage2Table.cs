using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Kvm.Uapi;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>
/// INTERIM stand-in for the real-format stage-2 table of the `tables` branch (S2Lab.Arch.Translation), to be removed
/// when it merges. Leaves are kept per level; descriptors are built with the stage-2 leaf layout (valid, page/block,
/// MemAttr[5:2], S2AP[7:6], SH[9:8], AF[10], XN[54:53]).
/// </summary>
internal sealed class InterimStage2Table(bool fwb) : IStage2Table
{
    private readonly Dictionary<ulong, Stage2Leaf>[] _levels = [new(), new(), new()]; // L1 (1G), L2 (2M), L3 (4K)

    public int LeafCount => _levels[0].Count + _levels[1].Count + _levels[2].Count;

    private static int LevelOf(ulong size) => size switch
    {
        PUD_SIZE => 1,
        PMD_SIZE => 2,
        _ => 3,
    };

    private static int Shift(int level) => level switch { 1 => PUD_SHIFT, 2 => PMD_SHIFT, _ => PAGE_SHIFT };

    public Errno Map(ulong ipa, ulong size, ulong pa, KvmPgtableProt prot)
    {
        // stage2_set_prot_attr (rule 14).
        var dev = (prot & KvmPgtableProt.DEVICE) != 0;
        var nc = (prot & KvmPgtableProt.NORMAL_NC) != 0;
        var x = (prot & KvmPgtableProt.X) != 0;
        if ((dev && nc) || (dev && x) || (nc && x))
            return Errno.EINVAL;
        if (size is not (PAGE_SIZE or PMD_SIZE or PUD_SIZE) || !IsAligned(ipa, size) || !IsAligned(pa, size))
            return Errno.EINVAL;
        Unmap(ipa, size);
        var level = LevelOf(size);
        var type = dev ? KvmS2MemType.DeviceNGnRE : nc ? KvmS2MemType.NormalNc : KvmS2MemType.Normal;
        var memAttr = KvmS2MemAttr.PageS2MemAttr(type, fwb);
        _levels[level - 1][ipa >> Shift(level)] = new Stage2Leaf(ipa, size, pa, prot, memAttr, level, Encode(pa, prot, memAttr, level));
        return Errno.None;
    }

    private static ulong Encode(ulong pa, KvmPgtableProt prot, byte memAttr, int level)
    {
        ulong d = 1; // valid
        if (level == 3)
            d |= 2; // page descriptor
        d |= (ulong)(memAttr & 0xF) << 2;
        if ((prot & KvmPgtableProt.R) != 0)
            d |= 1UL << 6;
        if ((prot & KvmPgtableProt.W) != 0)
            d |= 1UL << 7;
        d |= 3UL << 8; // inner shareable
        d |= 1UL << 10; // AF
        d |= pa & 0x0000_FFFF_FFFF_F000UL;
        if ((prot & KvmPgtableProt.X) == 0)
            d |= 2UL << 53; // XN[1:0] = 0b10: execute-never at EL1 and EL0
        return d;
    }

    public void Unmap(ulong ipa, ulong size)
    {
        var end = ipa + size;
        for (var level = 1; level <= 3; level++)
        {
            var dict = _levels[level - 1];
            if (dict.Count == 0)
                continue;
            var shift = Shift(level);
            var first = ipa >> shift;
            var last = (end - 1) >> shift;
            if (last - first + 1 <= (ulong)dict.Count)
            {
                for (var k = first; k <= last; k++)
                    dict.Remove(k);
            }
            else
            {
                foreach (var k in dict.Keys.Where(k => k >= first && k <= last).ToList())
                    dict.Remove(k);
            }
        }
    }

    public Stage2Leaf? GetLeaf(ulong ipa)
    {
        if (_levels[2].TryGetValue(ipa >> PAGE_SHIFT, out var l))
            return l;
        if (_levels[1].TryGetValue(ipa >> PMD_SHIFT, out l))
            return l;
        if (_levels[0].TryGetValue(ipa >> PUD_SHIFT, out l))
            return l;
        return null;
    }

    public void WriteProtect(ulong ipa, ulong size)
    {
        var end = ipa + size;
        foreach (var dict in _levels)
        {
            foreach (var (k, leaf) in dict.ToList())
            {
                if (leaf.Ipa < end && ipa < leaf.Ipa + leaf.Size && leaf.Writable)
                {
                    var prot = leaf.Prot & ~KvmPgtableProt.W;
                    dict[k] = leaf with { Prot = prot, Descriptor = Encode(leaf.Pa, prot, leaf.MemAttr, leaf.Level) };
                }
            }
        }
    }

    public Errno RelaxPerms(ulong ipa, KvmPgtableProt add)
    {
        if (GetLeaf(ipa) is not { } leaf)
            return Errno.EAGAIN;
        var prot = leaf.Prot | (add & KvmPgtableProt.RWX);
        if ((prot & KvmPgtableProt.X) != 0 && (prot & (KvmPgtableProt.DEVICE | KvmPgtableProt.NORMAL_NC)) != 0)
            return Errno.EINVAL;
        var level = leaf.Level;
        _levels[level - 1][leaf.Ipa >> Shift(level)] = leaf with { Prot = prot, Descriptor = Encode(leaf.Pa, prot, leaf.MemAttr, level) };
        return Errno.None;
    }

    public IEnumerable<Stage2Leaf> Leaves() =>
        _levels.SelectMany(d => d.Values).OrderBy(l => l.Ipa).ToList();
}
