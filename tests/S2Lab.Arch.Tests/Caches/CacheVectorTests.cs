namespace S2Lab.Arch.Tests.Caches;

/// <summary>Runs every case of Vectors/cache-vectors.txt (each derived from an Arm ARM rule named in the file).</summary>
public class CacheVectorTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in CacheVectorFile.Load())
        {
            data.Add(c.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Vector(string name) => CacheVectorFile.Run(CacheVectorFile.Load().Single(c => c.Name == name));

    [Fact]
    public void The_file_has_unique_case_names_and_enough_cases()
    {
        var names = CacheVectorFile.Load().Select(c => c.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.True(names.Count >= 25, $"only {names.Count} cases");
    }

    [Fact]
    public void A_wrong_expectation_fails_naming_the_line()
    {
        var c = CacheVectorFile.Parse(["case wrong", "  write cpu0 0x0 WB 11", "  read cpu1 0x0 NC -> 11", "end"]).Single();
        var e = Assert.ThrowsAny<Exception>(() => CacheVectorFile.Run(c));
        Assert.Contains("cache-vectors.txt:3", e.Message);
    }

    [Fact]
    public void A_malformed_step_names_the_line_and_token()
    {
        var c = CacheVectorFile.Parse(["case bad", "  write cpu0 0x0 WX 11", "end"]).Single();
        var e = Assert.Throws<FormatException>(() => CacheVectorFile.Run(c));
        Assert.Contains("cache-vectors.txt:2", e.Message);
        Assert.Contains("'WX'", e.Message);
    }
}
