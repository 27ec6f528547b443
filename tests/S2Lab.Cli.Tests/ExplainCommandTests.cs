using System.Text.Json;

namespace S2Lab.Cli.Tests;

/// <summary><c>s2lab explain</c>: the chain of decisions with rule numbers, built by running the model.</summary>
public class ExplainCommandTests
{
    [Fact]
    public void Rule7_and_rule8_mixedmap_on_a_host_without_FWB_passes_the_memslot_and_fails_the_fault()
    {
        var (exit, output, err) = CliRunner.Run("explain", "--host", "neoverse-n1", "--design", "linux-6.17", "--region", "mixedmap", "--s1", "0xFF");
        Assert.True(exit == 0, err);
        Assert.Contains("(rule 7)", output, StringComparison.Ordinal);
        Assert.Contains("(rule 8)", output, StringComparison.Ordinal);
        Assert.Contains("outcome:    KVM_RUN fails with EFAULT", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Rule6_usemem_on_a_host_without_FWB_is_refused_at_the_memslot()
    {
        var (exit, output, _) = CliRunner.Run("explain", "--host", "neoverse-n1", "--design", "linux-6.17", "--region", "nvgrace-usemem", "--s1", "0xFF");
        Assert.Equal(0, exit);
        Assert.Contains("(rule 6)", output, StringComparison.Ordinal);
        Assert.Contains("memslot refused: EINVAL", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Rule9_usemem_on_grace_is_Normal_write_back()
    {
        var (exit, output, _) = CliRunner.Run("explain", "--host", "neoverse-v2", "--design", "linux-6.17", "--region", "nvgrace-usemem", "--s1", "0xFF", "--access", "exec");
        Assert.Equal(0, exit);
        Assert.Contains("(rule 9)", output, StringComparison.Ordinal);
        Assert.Contains("MT_S2_FWB_NORMAL", output, StringComparison.Ordinal);
        Assert.Contains("guest sees: Normal-WB", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Rule12_exec_from_a_vfio_bar_is_an_instruction_abort()
    {
        var (exit, output, _) = CliRunner.Run("explain", "--host", "neoverse-v2", "--design", "linux-6.9", "--region", "vfio-bar", "--s1", "0x44", "--access", "exec");
        Assert.Equal(0, exit);
        Assert.Contains("instruction abort injected", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("anon")]
    [InlineData("hugetlb")]
    [InlineData("nvgrace-resmem")]
    [InlineData("devmem")]
    public void Every_region_kind_explains(string kind)
    {
        var (exit, output, err) = CliRunner.Run("explain", "--host", "neoverse-n1", "--design", "linux-6.17", "--region", kind, "--s1", "0xFF");
        Assert.True(exit == 0, err);
        Assert.Contains("[Memslot]", output, StringComparison.Ordinal);
        Assert.Contains("(rule 3)", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--host", "neoverse-n9")]
    [InlineData("--design", "linux-7.0")]
    [InlineData("--region", "gpu")]
    [InlineData("--s1", "0x100")]
    [InlineData("--access", "jump")]
    public void Bad_arguments_exit_2(string option, string value)
    {
        var args = new Dictionary<string, string>
        {
            ["--host"] = "neoverse-v2",
            ["--design"] = "linux-6.17",
            ["--region"] = "anon",
            ["--s1"] = "0xFF",
            ["--access"] = "read",
        };
        args[option] = value;
        var (exit, _, err) = CliRunner.Run(["explain", .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Equal(2, exit);
        Assert.Contains("s2lab explain:", err, StringComparison.Ordinal);
    }
}

/// <summary>explain takes the variants run and demo name: the same words give the same kernel behaviour.</summary>
public class ExplainVariantTests
{
    private static JsonElement Explain(string host, string design, string region = "nvgrace-usemem")
    {
        var (exit, output, err) = CliRunner.Run("explain", "--host", host, "--design", design, "--region", region, "--s1", "0xFF", "--format", "json");
        Assert.True(exit == 0, err);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static string Decision(JsonElement x, string stage) =>
        string.Join("\n", x.GetProperty("decisions").EnumerateArray().Where(d => d.GetProperty("stage").GetString() == stage).Select(d => d.GetProperty("text").GetString()));

    /// <summary>
    /// The JSON carries the kernel event chain the table's lines are built from: the memslot decision with its rule,
    /// the fault decisions with theirs (rule 9: cacheable usemem on FWB+DIC under 6.17), the stage-2 write, the CMOs
    /// KVM considered (both skipped with FWB and DIC), and the completed access last.
    /// </summary>
    [Fact]
    public void Json_events_are_the_chain_memslot_fault_stage2_write_cmos_access()
    {
        var x = Explain("neoverse-v2", "linux-6.17");
        var events = x.GetProperty("events").EnumerateArray().ToList();
        string Kind(JsonElement e) => e.GetProperty("event").GetString()!;
        var seqs = events.Select(e => e.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(seqs.Order(), seqs);
        Assert.Equal("memslot-decided", Kind(events[0]));
        Assert.Equal(("None", "Create"), (events[0].GetProperty("errno").GetString(), events[0].GetProperty("change").GetString()));
        Assert.Equal("memory-accessed", Kind(events[^1]));
        Assert.Equal("0x100000000", events[^1].GetProperty("ipa").GetString());
        var design = Assert.Single(events, e => Kind(e) == "fault-decided" && e.GetProperty("stage").GetString() == "Design");
        Assert.Equal(9, design.GetProperty("rule").GetInt32());
        var write = events.FindIndex(e => Kind(e) == "stage2-written");
        Assert.Equal("Map", events[write].GetProperty("kind").GetString());
        Assert.True(events.IndexOf(design) < write);
        var cmos = events.Where(e => Kind(e) == "cmo-required").ToList();
        Assert.Equal(["DcacheCleanInvalidatePoc", "IcacheInvalidatePou"], cmos.Select(c => c.GetProperty("op").GetString()));
        Assert.All(cmos, c => Assert.False(c.GetProperty("needed").GetBoolean()));
        // The decisions shown are the events': every fault decision's text appears, in order, with its rule.
        var faultLines = x.GetProperty("decisions").EnumerateArray()
            .SkipWhile(d => d.GetProperty("stage").GetString() != "Memslot").Skip(1) // the ioctl's line; the fault's follow
            .Where(d => d.GetProperty("stage").GetString() is not ("Cmo" or "Combine" or "Hazard"))
            .Where(d => !d.GetProperty("text").GetString()!.StartsWith("translated by", StringComparison.Ordinal))
            .Select(d => (d.GetProperty("stage").GetString(), d.GetProperty("rule").ValueKind == JsonValueKind.Null ? 0 : d.GetProperty("rule").GetInt32(), d.GetProperty("text").GetString()));
        var faultEvents = events.Where(e => Kind(e) == "fault-decided")
            .Select(e => (e.GetProperty("stage").GetString(), e.GetProperty("rule").GetInt32(), e.GetProperty("reason").GetString()));
        Assert.Equal(faultEvents, faultLines);
    }

    [Fact]
    public void Rule7_and_rule8_usemem_mapped_mixedmap_passes_the_memslot_on_a_host_without_FWB_and_fails_the_fault()
    {
        var pfnmap = Explain("neoverse-n1", "linux-6.17");
        Assert.Contains("memslot refused: EINVAL", pfnmap.GetProperty("outcome").GetString(), StringComparison.Ordinal);
        var mixed = Explain("neoverse-n1", "linux-6.17:usemem=mixedmap");
        Assert.Contains("VM_MIXEDMAP", Decision(mixed, "Mmap") + Decision(mixed, "Memslot"), StringComparison.Ordinal);
        Assert.Equal("KVM_RUN fails with EFAULT", mixed.GetProperty("outcome").GetString());
    }

    [Fact]
    public void Rule9_and_rule10_the_flag_variants_decide_whether_the_VMM_sets_the_memslot_flag()
    {
        var cacheable = Explain("neoverse-v2", "proposal-memslot-flag:flag=prefer-cacheable");
        Assert.Contains("flags ENABLE_CACHEABLE_PFNMAP", Decision(cacheable, "Memslot"), StringComparison.Ordinal);
        Assert.StartsWith("MT_S2_FWB_NORMAL", cacheable.GetProperty("stage2").GetString(), StringComparison.Ordinal);
        var migratable = Explain("neoverse-v2", "proposal-memslot-flag:flag=prefer-migratable");
        Assert.Contains("flags None", Decision(migratable, "Memslot"), StringComparison.Ordinal);
        Assert.StartsWith("MT_S2_FWB_DEVICE_nGnRE", migratable.GetProperty("stage2").GetString(), StringComparison.Ordinal);
        // A bare design is the scenario default: a VMM that prefers cacheable.
        Assert.Equal(cacheable.GetProperty("stage2").GetString(), Explain("neoverse-v2", "proposal-memslot-flag").GetProperty("stage2").GetString());
        // The flag only goes on cacheable device memory, as the VMM does it.
        Assert.Contains("flags None", Decision(Explain("neoverse-v2", "proposal-memslot-flag:flag=prefer-cacheable", "anon"), "Memslot"), StringComparison.Ordinal);
    }

    [Fact]
    public void Rule9_the_module_parameter_variant_maps_usemem_normal_on_a_host_without_FWB()
    {
        var on = Explain("neoverse-n1", "proposal-module-param:param=on");
        Assert.Equal("proposal-module-param=on", on.GetProperty("design").GetString());
        Assert.StartsWith("MT_S2_NORMAL", on.GetProperty("stage2").GetString(), StringComparison.Ordinal);
        var off = Explain("neoverse-n1", "proposal-module-param:param=off");
        Assert.Contains("memslot refused: EINVAL", off.GetProperty("outcome").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("proposal-module-param=on", "write a variant as DESIGN:VARIANT")]
    [InlineData("proposal-module-param:on", "its variants: proposal-module-param:param=on, proposal-module-param:param=off")]
    [InlineData("linux-6.9:flag=prefer-cacheable", "design 'linux-6.9' has no variant 'flag=prefer-cacheable'; its variants: linux-6.9:usemem=mixedmap")]
    [InlineData("all", "unknown design 'all'")]
    public void A_bad_variant_exits_2_with_the_valid_ones(string design, string message)
    {
        var (exit, output, err) = CliRunner.Run("explain", "--host", "neoverse-n1", "--design", design, "--region", "anon", "--s1", "0xFF");
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }
}
