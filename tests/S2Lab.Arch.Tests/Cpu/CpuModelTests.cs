using S2Lab.Arch.Cpu;

namespace S2Lab.Arch.Tests.Cpu;

/// <summary>ID register field extraction, the derived features, and the presets.</summary>
public class CpuModelTests
{
    [Theory]
    [InlineData(0UL, 0, false)]
    [InlineData(1UL << 40, 1, true)]
    [InlineData(2UL << 40, 2, true)]
    [InlineData(0xFUL << 36 | 0xFUL << 44, 0, false)]
    public void Mmfr2_FWB_is_bits_43_to_40(ulong raw, int fwb, bool has)
    {
        var r = new IdAa64Mmfr2El1(raw);
        Assert.Equal(fwb, r.Fwb);
        Assert.Equal(has, r.HasStage2Fwb);
    }

    [Fact]
    public void Ctr_fields_are_extracted_from_their_bits()
    {
        var ctr = new CtrEl0((1UL << 31) | (1UL << 29) | (5UL << 16) | 3UL);
        Assert.True(ctr.Dic);
        Assert.False(ctr.Idc);
        Assert.Equal(5, ctr.DminLine);
        Assert.Equal(3, ctr.IminLine);
        Assert.True(new CtrEl0(1UL << 28).Idc);
    }

    [Theory]
    [InlineData(0b0000, 32)]
    [InlineData(0b0101, 48)]
    [InlineData(0b0110, 52)]
    [InlineData(0b0111, 56)]
    public void Mmfr0_PARange_gives_PA_bits(int parange, int bits)
    {
        Assert.Equal(bits, new IdAa64Mmfr0El1((ulong)parange | 0xFUL << 28).PaBits);
        Assert.Equal(parange, IdAa64Mmfr0El1.EncodePaBits(bits));
    }

    [Fact]
    public void Reserved_PARange_is_null_and_clamped_to_48()
    {
        Assert.Null(new IdAa64Mmfr0El1(0b1000).PaBits);
        Assert.Equal(48, CpuModel.FromRegisters("x", 0b1000, 0, 0).PaBits);
    }

    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(true, true, true)]
    public void Rule1_cacheable_pfnmap_needs_FWB_and_DIC(bool fwb, bool dic, bool supported)
    {
        foreach (var idc in new[] { false, true })
        {
            var ctr = (dic ? 1UL << CtrEl0.DicBit : 0) | (idc ? 1UL << CtrEl0.IdcBit : 0);
            var cpu = CpuModel.FromRegisters("t", 5, fwb ? 1UL << IdAa64Mmfr2El1.FwbShift : 0, ctr);
            // IDC does not matter.
            Assert.Equal(supported, cpu.SupportsCacheablePfnmap);
        }
    }

    [Fact]
    public void Presets_neoverse_n1_has_no_FWB_and_neoverse_v2_has_FWB_and_DIC()
    {
        var n1 = CpuPresets.Get("neoverse-n1").Model;
        Assert.False(n1.HasStage2Fwb);
        Assert.False(n1.SupportsCacheablePfnmap);

        var v2 = CpuPresets.Get("Neoverse-V2").Model;
        Assert.True(v2.HasStage2Fwb);
        Assert.True(v2.HasCacheDic);
        Assert.True(v2.SupportsCacheablePfnmap);

        Assert.Null(CpuPresets.Find("no-such-cpu"));
        Assert.Throws<ArgumentException>(() => CpuPresets.Get("no-such-cpu"));
    }
}
