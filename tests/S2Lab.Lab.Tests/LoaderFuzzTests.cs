using CsCheck;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Any damage to a scenario file gives either a valid scenario or positioned errors, never a crash.</summary>
public class LoaderFuzzTests
{
    private static readonly string[] Lines = DemoScenario.Text().Split('\n');

    private static readonly string[] Junk = [":", "[", "]", "{", "}", "- ", "0x", "  ", "\"", "&a", "*a", "~", "ERR", "-1", "1GiB", "\t"];

    [Fact]
    public void Damaged_files_load_or_fail_with_positioned_errors()
    {
        var gen = Gen.Select(Gen.Int[0, Lines.Length - 1], Gen.Int[0, 3], Gen.Int[0, 200], Gen.Int[0, Junk.Length - 1]);
        gen.Sample((line, kind, col, junk) =>
        {
            var lines = Lines.ToList();
            var l = lines[line];
            var at = Math.Min(col, l.Length);
            switch (kind)
            {
                case 0:
                    lines.RemoveAt(line);
                    break;
                case 1:
                    lines.Insert(line, l);
                    break;
                case 2:
                    lines[line] = l[..at];
                    break;
                default:
                    lines[line] = l[..at] + Junk[junk] + l[at..];
                    break;
            }

            var text = string.Join('\n', lines);
            try
            {
                var s = ScenarioLoader.Parse(text, "fuzz.yaml");
                Assert.NotEmpty(s.Hosts);
            }
            catch (ScenarioException e)
            {
                Assert.NotEmpty(e.Errors);
                Assert.All(e.Errors, err =>
                {
                    Assert.Equal("fuzz.yaml", err.File);
                    Assert.True(err.At.Line >= 1 && err.At.Column >= 1, err.ToString());
                    Assert.False(string.IsNullOrWhiteSpace(err.Message));
                });
            }
        }, iter: 400);
    }

    /// <summary>Damaged files that still load also run: the model answers with errnos and outcomes, never an exception.</summary>
    [Fact]
    public void Damaged_files_that_load_also_run()
    {
        var gen = Gen.Select(Gen.Int[0, Lines.Length - 1], Gen.Int[0, 1]);
        gen.Sample((line, kind) =>
        {
            var lines = Lines.ToList();
            if (kind == 0)
                lines.RemoveAt(line);
            else
                lines.Insert(line, lines[line]);
            Scenario s;
            try
            {
                s = ScenarioLoader.Parse(string.Join('\n', lines), "fuzz.yaml");
            }
            catch (ScenarioException)
            {
                return;
            }

            var run = Runner.ScenarioRunner.RunOnce(s, new DesignRef("linux-6.17"), RunVariant.Default);
            Assert.Equal(s.Steps.Count(x => x is not ExpectStep), run.Steps.Count);
        }, iter: 40);
    }

    [Fact]
    public void Damaged_JSON_loads_or_fails_with_positioned_errors()
    {
        var text = File.ReadAllText(Path.Combine(Repo.Scenarios, "module-param-altra.json"));
        var gen = Gen.Select(Gen.Int[0, text.Length - 1], Gen.Int[0, Junk.Length - 1], Gen.Int[0, 20]);
        gen.Sample((at, junk, cut) =>
        {
            var damaged = text[..at] + Junk[junk] + text[Math.Min(text.Length, at + cut)..];
            try
            {
                ScenarioLoader.Parse(damaged, "fuzz.json");
            }
            catch (ScenarioException e)
            {
                Assert.All(e.Errors, err => Assert.True(err.At.Line >= 1 && err.At.Column >= 1, err.ToString()));
            }
        }, iter: 400);
    }
}
