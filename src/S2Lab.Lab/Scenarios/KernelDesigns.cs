using S2Lab.Kernel.Kvm.Designs;

namespace S2Lab.Lab.Scenarios;

/// <summary>The bridge to the kernel model's design registry.</summary>
internal static class KernelDesigns
{
    public static IReadOnlyList<string> Names { get; } = KvmDesigns.Names.ToList();
}
