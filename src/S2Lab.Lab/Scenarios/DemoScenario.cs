namespace S2Lab.Lab.Scenarios;

/// <summary>The scenario of <c>s2lab demo</c>: scenarios/demo.yaml, embedded in the assembly.</summary>
public static class DemoScenario
{
    /// <summary>The name errors and reports give the embedded file.</summary>
    public const string FileName = "demo.yaml";

    /// <summary>The YAML text.</summary>
    public static string Text()
    {
        using var stream = typeof(DemoScenario).Assembly.GetManifestResourceStream("S2Lab.Lab.demo.yaml")
            ?? throw new InvalidOperationException("the embedded demo scenario is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The parsed and validated demo scenario.</summary>
    public static Scenario Load() => ScenarioLoader.Parse(Text(), FileName);
}
