using S2Lab.Arch.Translation;

namespace S2Lab.Arch.Tests.Translation;

public class VtcrTests
{
    public static TheoryData<int> Rows()
    {
        var data = new TheoryData<int>();
        foreach (var (line, _) in VectorFiles.ReadCsv("stage2-start-levels.csv"))
        {
            data.Add(line);
        }

        return data;
    }

    private static Granule ParseGranule(string s) => s switch
    {
        "4K" => Granule.Size4K,
        "16K" => Granule.Size16K,
        "64K" => Granule.Size64K,
        _ => throw new FormatException(s),
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Start_level_and_concatenation_follow_the_table_of_section_6_3_for_every_IPA_size(int line)
    {
        string[] f = VectorFiles.ReadCsv("stage2-start-levels.csv").Single(r => r.Line == line).Fields;
        Granule g = ParseGranule(f[0]);
        int sl0 = int.Parse(f[1]), pamax = int.Parse(f[4]);
        bool sl2 = f[2] == "1", ds = f[3] == "1", ttst = f[5] == "1";
        bool neverValid = f[6] == "-";
        var features = new Stage2Features(pamax, ttst, Lpa2: true);
        for (int ia = 8; ia <= 60; ia++)
        {
            ulong raw = (uint)(64 - ia) | ((ulong)sl0 << VtcrEl2.Sl0Shift) | ((ulong)g.Tg0Encoding() << VtcrEl2.Tg0Shift) |
                        (5UL << VtcrEl2.PsShift) | (1UL << VtcrEl2.Res1Bit) | (ds ? 1UL << VtcrEl2.DsBit : 0) | (sl2 ? 1UL << VtcrEl2.Sl2Bit : 0);
            if (pamax == 52)
            {
                raw = (raw & ~(7UL << VtcrEl2.PsShift)) | (6UL << VtcrEl2.PsShift);
            }

            var v = new VtcrEl2(raw).Validate(features);
            string ctx = $"line {line}: {string.Join(',', f)}, IA {ia}: {v.Reason}";
            if (neverValid)
            {
                Assert.False(v.IsValid, ctx);
                Assert.False(string.IsNullOrEmpty(v.Reason));
                continue;
            }

            int start = int.Parse(f[6]), min = int.Parse(f[7]), max = int.Parse(f[8]), single = int.Parse(f[9]);
            bool expectValid = ia >= min && ia <= max;
            Assert.True(expectValid == v.IsValid, ctx);
            if (!v.IsValid)
            {
                Assert.False(string.IsNullOrEmpty(v.Reason));
                continue;
            }

            var geo = v.Geometry!;
            Assert.Equal(start, geo.StartLevel);
            Assert.Equal(ia <= single ? 1 : 1 << (ia - single), geo.ConcatenatedTables);
            Assert.Equal((ulong)geo.ConcatenatedTables << g.Shift(), geo.RootTableBytes);
        }
    }

    [Theory]
    [InlineData(40, 40, 0x80023558UL)] // the value commonly seen on 40-bit PA hosts (Cortex-A72 class)
    [InlineData(40, 48, 0x80053558UL)]
    [InlineData(44, 48, 0x80053594UL)] // 4 levels: SL0 = 2 (start level 0)
    [InlineData(48, 48, 0x80053590UL)]
    [InlineData(36, 48, 0x8005355CUL)] // (36-8)/9 = 3 levels: SL0 = 1, start level 1 with 2^(36-30) = 64 entries
    [InlineData(32, 48, 0x80053520UL)] // (32-8)/9 = 2 levels: SL0 = 0, start level 2 with 2^(32-21) entries = 4 tables
    public void Linux_kvm_get_vtcr_values_for_4K(int ipaBits, int paBits, ulong expected)
    {
        var vtcr = VtcrEl2.ForIpaSize(ipaBits, paBits);
        Assert.Equal($"0x{expected:x}", $"0x{vtcr.Value:x}");
        Assert.True(vtcr.Validate(new Stage2Features(paBits)).IsValid);
    }

    [Fact]
    public void Default_40_bit_IPA_uses_two_concatenated_level_1_tables()
    {
        var geo = VtcrEl2.ForIpaSize(40).Validate(new Stage2Features(48)).GetOrThrow();
        Assert.Equal(1, geo.StartLevel);
        Assert.Equal(2, geo.ConcatenatedTables);
        Assert.Equal(1024, geo.RootEntries);
        Assert.Equal(8192UL, geo.RootTableBytes);
    }

    [Theory]
    [InlineData(Granule.Size16K, 40, 2, 1)] // (40-8)/11 = 2 levels -> start level 2, 2^(40-36) = 16 tables
    [InlineData(Granule.Size16K, 48, 3, 2)] // 40/11 = 3 levels -> start level 1, 2 tables
    [InlineData(Granule.Size64K, 40, 2, 1)] // 32/13 = 2 levels -> start level 2, one table
    [InlineData(Granule.Size64K, 48, 3, 1)] // 40/13 = 3 levels -> start level 1
    public void Linux_levels_for_16K_and_64K(Granule g, int ipaBits, int levels, int _)
    {
        var vtcr = VtcrEl2.ForIpaSize(ipaBits, 48, g);
        var geo = vtcr.Validate(new Stage2Features(48)).GetOrThrow();
        Assert.Equal(levels, geo.Levels);
        Assert.Equal(4 - levels, geo.StartLevel);
        // SL0 = TGRAN_SL0_BASE - (4 - levels), with base 3 for 16K/64K.
        Assert.Equal(3 - (4 - levels), vtcr.Sl0);
    }

    [Fact]
    public void Invalid_values_are_rejected_with_the_reason()
    {
        var f = new Stage2Features(48);
        Assert.Contains("TG0", new VtcrEl2((0x3UL << VtcrEl2.Tg0Shift) | 24UL | (1UL << 6)).Validate(f).Reason);
        Assert.Contains("outside", VtcrEl2.Create(Granule.Size4K, 44, 1).Validate(f).Reason); // 44 > 43: 32 tables would be needed
        Assert.Contains("FEAT_TTST", VtcrEl2.Create(Granule.Size4K, 20, 3).Validate(f).Reason);
        Assert.Contains("FEAT_LPA2", VtcrEl2.Create(Granule.Size4K, 52, 0, 52, ds: true).Validate(new Stage2Features(52)).Reason);
        Assert.Contains("PAMax", VtcrEl2.Create(Granule.Size4K, 42, 1, 40).Validate(new Stage2Features(40)).Reason);
        Assert.Throws<ArgumentException>(() => VtcrEl2.Create(Granule.Size4K, 44, 1).Validate(f).GetOrThrow());
    }

    [Fact]
    public void Fields_decode_from_their_bit_positions()
    {
        var v = VtcrEl2.Create(Granule.Size16K, 40, 2, 44, vmid16: true, hardwareAf: true, hardwareDirty: true, sh0: 2, orgn0: 3, irgn0: 2);
        Assert.Equal(24, v.T0sz);
        Assert.Equal(1, v.Sl0);
        Assert.Equal(2, v.Irgn0);
        Assert.Equal(3, v.Orgn0);
        Assert.Equal(2, v.Sh0);
        Assert.Equal(0b10, v.Tg0);
        Assert.Equal(Granule.Size16K, v.Granule);
        Assert.Equal(4, v.Ps);
        Assert.Equal(44, v.PsBits);
        Assert.True(v.Vs && v.Ha && v.Hd);
        Assert.False(v.Ds || v.Sl2);
        Assert.Equal(1UL << 31, v.Value & (1UL << 31));
        Assert.Equal(2, v.StartLevel);
    }
}
