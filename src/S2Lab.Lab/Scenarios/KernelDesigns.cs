namespace S2Lab.Lab.Scenarios;

/// <summary>The bridge to the kernel model's design registry.</summary>
internal static class KernelDesigns
{
    public static IReadOnlyList<string> Names { get; } =
        ["linux-6.8", "linux-6.9", "linux-6.17", "proposal-memslot-flag", "proposal-module-param"];
}
