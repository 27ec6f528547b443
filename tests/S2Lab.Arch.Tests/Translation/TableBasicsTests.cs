using S2Lab.Arch.Translation;
using static S2Lab.Arch.Tests.Translation.TestTables;

namespace S2Lab.Arch.Tests.Translation;

public class TableBasicsTests
{
    [Fact]
    public void One_4K_page_in_a_40_bit_IPA_space_takes_16_KiB_of_tables()
    {
        var t = Create(40);
        Assert.Equal(2, t.Geometry.ConcatenatedTables);
        Assert.Equal(8 * (long)KiB, t.TableBytes); // concatenated level-1 root
        Assert.Equal(Stage2Errno.None, t.Map(0x8000_0000, 4 * KiB, 0x1_2345_6000, Normal(t)));
        Assert.Equal(16 * (long)KiB, t.TableBytes); // + one level-2 and one level-3 table
        Assert.Equal(4, t.TablePages);
    }

    [Fact]
    public void Mapped_page_translates_to_its_output_address_with_its_attributes()
    {
        var t = Create(40);
        t.Map(0x4000_1000, 4 * KiB, 0x9_8765_4000, new S2LeafAttributes(0xF, S2Permissions.Read));
        var r = t.Translate(0x4000_1abc, S2AccessKind.Read);
        Assert.False(r.IsFault);
        Assert.Equal(0x9_8765_4abcUL, r.Pa);
        Assert.Equal(0xF, r.MemAttr);
        Assert.Equal(S2Shareability.InnerShareable, r.Shareability);
        Assert.Equal(3, r.Level);
        Assert.Equal(new S2Fault(S2FaultKind.Permission, 3), t.Translate(0x4000_1abc, S2AccessKind.Write).Fault);
    }

    [Fact]
    public void Unmapping_the_only_page_frees_the_tables_below_the_root()
    {
        var t = Create(40);
        t.Map(0x8000_0000, 4 * KiB, 0x1_0000_0000, Normal(t));
        Assert.Equal(Stage2Errno.None, t.Unmap(0x8000_0000, 4 * KiB));
        Assert.Equal(8 * (long)KiB, t.TableBytes);
        Assert.Equal(new S2Fault(S2FaultKind.Translation, 1), t.Translate(0x8000_0000, S2AccessKind.Read, useTlb: false).Fault);
    }
}
