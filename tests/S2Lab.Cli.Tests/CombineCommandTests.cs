using System.CommandLine;

namespace S2Lab.Cli.Tests;

/// <summary><c>s2lab combine</c>, run in-process.</summary>
public class CombineCommandTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>The main vectors (docs/arm-reference.md#vectors), shared with the Arch tests (tests/S2Lab.Arch.Tests/Vectors).</summary>
    private static string MainVectorsPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "S2Lab.Arch.Tests", "Vectors", "main-vectors.csv");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("tests/S2Lab.Arch.Tests/Vectors/main-vectors.csv not found above " + AppContext.BaseDirectory);
    }

    private static string TempCsv(string content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"s2lab-combine-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void Batch_round_trip_reproduces_the_arm_columns_of_the_main_vectors()
    {
        var rows = File.ReadAllLines(MainVectorsPath()).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
        Assert.Equal(82, rows.Count);
        // id,fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh,arm_attr,arm_type,arm_sh,...
        var input = "fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh\n"
            + string.Concat(rows.Select(r => $"{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]}\n"));
        var path = TempCsv(input);
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);

            Assert.Equal(0, exit);
            Assert.Equal("", error);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("attr,sh,type", lines[0]);
            Assert.Equal(rows.Count + 1, lines.Length);
            for (var i = 0; i < rows.Count; i++)
            {
                Assert.Equal($"{rows[i][7]},{rows[i][9]},{rows[i][8]}", lines[i + 1]);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("0,0,0xFF,ISH,0b1111,ISH\n0,0,0xFF,ISH,0b111,ISH\n", 3, "s2_memattr")]
    [InlineData("0,0,0xFF,ISH,0b1111,ISH\n0,2,0xFF,ISH,0b1111,ISH\n", 3, "hcr_cd")]
    [InlineData("1,0,0x1FF,ISH,0b1111,ISH\n", 2, "s1_mair")]
    [InlineData("1,0,0xFF,XSH,0b1111,ISH\n", 2, "s1_sh")]
    [InlineData("1,0,0xFF,ISH,0b1111,ish2\n", 2, "s2_sh")]
    [InlineData("x,0,0xFF,ISH,0b1111,ISH\n", 2, "fwb")]
    public void Malformed_row_exits_2_naming_file_line_and_field_with_no_output(string body, int line, string field)
    {
        var path = TempCsv("fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh\n" + body);
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);

            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:{line}:", error, StringComparison.Ordinal);
            Assert.Contains($"'{field}'", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Row_with_too_few_fields_names_the_line()
    {
        var path = TempCsv("fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh\n0,0,0xFF,ISH,0b1111,ISH\n0,0,0xFF\n");
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:3:", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Wrong_header_is_an_error_on_line_1()
    {
        var path = TempCsv("fwb,cd,s1_mair,s1_sh,s2_memattr,s2_sh\n0,0,0xFF,ISH,0b1111,ISH\n");
        try
        {
            var (exit, output, error) = Run("combine", "--batch", path);
            Assert.Equal(2, exit);
            Assert.Equal("", output);
            Assert.Contains($"{path}:1:", error, StringComparison.Ordinal);
            Assert.Contains("'hcr_cd'", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_batch_file_exits_2()
    {
        var (exit, _, error) = Run("combine", "--batch", "/nonexistent/s2lab.csv");
        Assert.Equal(2, exit);
        Assert.Contains("/nonexistent/s2lab.csv", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Crlf_input_is_accepted()
    {
        var path = TempCsv("fwb,hcr_cd,s1_mair,s1_sh,s2_memattr,s2_sh\r\n1,0,0x04,ISH,0b0110,ISH\r\n");
        try
        {
            var (exit, output, _) = Run("combine", "--batch", path);
            Assert.Equal(0, exit);
            Assert.Equal("attr,sh,type\n0xFF,ISH,Normal oWB.RWA iWB.RWA\n", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Single_prints_attribute_sh_description_and_explanation()
    {
        var (exit, output, error) = Run("combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b0110");
        Assert.Equal(0, exit);
        Assert.Equal("", error);
        Assert.Contains("0xFF", output, StringComparison.Ordinal);
        Assert.Contains("Normal oWB.RWA iWB.RWA", output, StringComparison.Ordinal);
        Assert.Contains("ISH", output, StringComparison.Ordinal);
        Assert.Contains("S2 MemAttr 0b0110 under FWB forces Normal write-back over S1 Device-nGnRE", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Single_json_has_the_result_fields()
    {
        var (exit, output, _) = Run("combine", "--fwb", "0", "--s1", "0x0C", "--s2", "0b0101", "--s1-sh", "NSH", "--format", "json");
        Assert.Equal(0, exit);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        Assert.Equal("0x0C", doc.RootElement.GetProperty("attr").GetString());
        Assert.Equal("OSH", doc.RootElement.GetProperty("sh").GetString());
        Assert.Equal("Device-GRE", doc.RootElement.GetProperty("type").GetString());
        Assert.True(doc.RootElement.GetProperty("device").GetBoolean());
        Assert.True(doc.RootElement.GetProperty("explanation").GetArrayLength() >= 3);
    }

    [Fact]
    public void Single_with_cd_applies_HCR_EL2_CD_after_FWB()
    {
        var (exit, output, _) = Run("combine", "--fwb", "1", "--s1", "0xFF", "--s2", "0b0110", "--cd", "1", "--format", "json");
        Assert.Equal(0, exit);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        Assert.Equal("0x44", doc.RootElement.GetProperty("attr").GetString());
    }

    [Theory]
    [InlineData("combine", "--fwb", "2", "--s1", "0x04", "--s2", "0b0110")]
    [InlineData("combine", "--fwb", "1", "--s1", "0x100", "--s2", "0b0110")]
    [InlineData("combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b10000")]
    [InlineData("combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b0110", "--s1-sh", "XSH")]
    [InlineData("combine", "--fwb", "1", "--s1", "0x04")]
    [InlineData("combine", "--s1")]
    [InlineData("combine", "--bogus")]
    [InlineData("combine", "--table", "--fwb", "1")]
    [InlineData("combine", "--fwb", "1", "--s1", "0x04", "--s2", "0b0110", "--features", "sve")]
    public void Bad_arguments_exit_2_with_a_message(params string[] args)
    {
        var (exit, output, error) = Run(args);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        // The command's own checks say "s2lab combine: ..."; the parser's (unknown option) say "s2lab: ...".
        Assert.Matches("^s2lab( combine)?: ", error);
    }

    [Fact]
    public void Table_lists_every_Linux_type_and_KVM_type()
    {
        var (exit, output, _) = Run("combine", "--table");
        Assert.Equal(0, exit);
        foreach (var name in new[] { "MT_NORMAL ", "MT_NORMAL_TAGGED", "MT_NORMAL_NC", "MT_DEVICE_nGnRnE", "MT_DEVICE_nGnRE", "MT_S2_NORMAL", "MT_S2_FWB_NORMAL", "MT_S2_DEVICE_nGnRE", "MT_S2_FWB_NORMAL_NC" })
        {
            Assert.Contains(name, output, StringComparison.Ordinal);
        }
    }
}
