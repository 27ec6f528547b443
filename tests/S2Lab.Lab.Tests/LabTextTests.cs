using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Tests;

/// <summary>The words reports use for values: one format each, and each one reads back.</summary>
public class LabTextTests
{
    [Fact]
    public void Success_is_ok_and_an_errno_is_the_kernel_name()
    {
        Assert.Equal("ok", LabText.Errno(Errno.None));
        Assert.Equal("EINVAL", LabText.Errno(Errno.EINVAL));
        Assert.Equal("EFAULT", LabText.Errno(Errno.EFAULT));
    }

    [Fact]
    public void Every_errno_text_reads_back_as_the_same_errno()
    {
        foreach (var e in Enum.GetValues<Errno>().Append((Errno)4095))
        {
            Assert.True(LabText.TryParseErrno(LabText.Errno(e), out var back), e.ToString());
            Assert.Equal(e, back);
        }

        Assert.False(LabText.TryParseErrno("0", out _));
        Assert.False(LabText.TryParseErrno("einval", out _));
    }

    [Theory]
    [InlineData(0x00, "Device-nGnRnE")]
    [InlineData(0x04, "Device-nGnRE")]
    [InlineData(0x05, "Device-nGnRE")] // the FEAT_XS form of nGnRE
    [InlineData(0x0C, "Device-GRE")]
    [InlineData(0xFF, "Normal-WB")]
    [InlineData(0x77, "Normal-WB")] // transient write-back
    [InlineData(0x44, "Normal-NC")]
    [InlineData(0x40, "Normal-NC")] // the FEAT_XS form of Normal iNC oNC, not a write-through half
    [InlineData(0xBB, "Normal-WT")]
    [InlineData(0xA0, "Normal-WT")]
    [InlineData(0x4F, "Normal-iWB-oNC")]
    [InlineData(0xF0, "Normal-Tagged")]
    public void Memory_type_names_follow_the_Arch_decoding_of_the_PAR_attribute(int par, string name)
    {
        Assert.Equal(name, LabText.MemoryType(new EffectiveMemoryType((byte)par, Mair.Decode((byte)par, AttributeFeatures.Xs | AttributeFeatures.Mte2).Attributes)));
        // Without decoded attributes, the PAR byte alone gives the same name.
        Assert.Equal(name, LabText.MemoryType(new EffectiveMemoryType((byte)par, "described elsewhere", par < 0x10, par >= 0x10)));
    }

    [Fact]
    public void Start_outcomes_keep_their_report_words_and_the_JSON_writes_them()
    {
        // docs/scenario-schema.md: a start step's outcome is ok, refused or failed (Vmm.StartOutcome.Started is "ok").
        Assert.Equal(["ok", "refused", "failed"], Enum.GetValues<Vmm.StartOutcome>().Select(LabText.Start));
        Assert.Equal(["ok", "refused", "failed"], Scenarios.ExpectFields.StartOutcomes);
        var result = new StartResult(0, "s", "vm", "h", Vmm.StartOutcome.Started, "", Errno.None, "1", []);
        var json = System.Text.Json.JsonSerializer.Serialize(result);
        Assert.Contains("\"Outcome\":\"ok\"", json, StringComparison.Ordinal);
        Assert.Equal(Vmm.StartOutcome.Refused,
            System.Text.Json.JsonSerializer.Deserialize<Vmm.StartOutcome>("\"refused\"", new System.Text.Json.JsonSerializerOptions { Converters = { new StartOutcomeWord() } }));
    }

    [Fact]
    public void Enum_words_are_the_JSON_words()
    {
        Assert.Equal("normal-nc", LabText.Stage2(Runner.Stage2Type.NormalNc));
        Assert.Equal("device-ngnre", LabText.Stage2(Runner.Stage2Type.DeviceNgnre));
        Assert.Equal("none", LabText.Stage2(Runner.Stage2Type.None));
        Assert.Equal("mismatched-alias", LabText.Hazard(S2Lab.Lab.Judging.HazardKind.MismatchedAlias));
        Assert.Equal("ram-as-device", LabText.Hazard(S2Lab.Lab.Judging.HazardKind.RamAsDevice));
    }
}
