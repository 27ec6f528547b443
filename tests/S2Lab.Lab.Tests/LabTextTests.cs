using S2Lab.Arch.Attributes;
using S2Lab.Kernel.Arm64;
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
        Assert.Equal("normal", LabText.Stage2(Kernel.Arm64.KvmS2MemType.Normal));
        Assert.Equal("normal-nc", LabText.Stage2(Kernel.Arm64.KvmS2MemType.NormalNc));
        Assert.Equal("device-ngnre", LabText.Stage2(Kernel.Arm64.KvmS2MemType.DeviceNGnRE));
        Assert.Equal("none", LabText.Stage2(null));
        Assert.Equal("exec", LabText.Access(Arch.Translation.S2AccessKind.Execute));
        Assert.Equal("mismatched-alias", LabText.Hazard(S2Lab.Lab.Judging.HazardKind.MismatchedAlias));
        Assert.Equal("ram-as-device", LabText.Hazard(S2Lab.Lab.Judging.HazardKind.RamAsDevice));
    }

    [Fact]
    public void Stage2_types_and_access_kinds_have_one_word_each_in_reports_expect_steps_and_JSON()
    {
        var opts = new System.Text.Json.JsonSerializerOptions { Converters = { new Stage2Word(), new AccessWord() } };
        KvmS2MemType?[] types = [KvmS2MemType.Normal, KvmS2MemType.NormalNc, KvmS2MemType.DeviceNGnRE, KvmS2MemType.AsS1, null];
        foreach (var t in types)
        {
            var json = System.Text.Json.JsonSerializer.Serialize(t, opts);
            Assert.Equal($"\"{LabText.Stage2(t)}\"", json);
            Assert.Equal(t, System.Text.Json.JsonSerializer.Deserialize<KvmS2MemType?>(json, opts));
            Assert.True(LabText.TryParseStage2(LabText.Stage2(t), out var back) && back == t);
        }

        // A guest's stage 2 is never AS_S1 (pKVM's host stage 2), so expect steps accept only the other four.
        Assert.Equal(["normal", "normal-nc", "device-ngnre", "none"], LabText.Stage2Words);
        foreach (var k in Enum.GetValues<Arch.Translation.S2AccessKind>())
        {
            var json = System.Text.Json.JsonSerializer.Serialize(k, opts);
            Assert.Equal($"\"{LabText.Access(k)}\"", json);
            Assert.Equal(k, System.Text.Json.JsonSerializer.Deserialize<Arch.Translation.S2AccessKind>(json, opts));
            Assert.Equal(k, LabText.AccessWords[LabText.Access(k)]);
        }

        Assert.Equal(["read", "write", "exec"], LabText.AccessWords.Keys);
    }
}
