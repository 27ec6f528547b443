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
