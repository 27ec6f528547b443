using System.Reflection;
using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;

namespace S2Lab.Cli.Tests;

/// <summary>
/// The layering of docs/architecture.md ("one type per concept"): S2Lab.Arch models the Arm architecture only, so no
/// type in it names KVM or Linux; Linux's arm64 encodings live in S2Lab.Kernel.Arm64.
/// </summary>
public class LayeringTests
{
    private static readonly Assembly Arch = typeof(Stage2PageTable).Assembly;

    /// <summary>Types (public or not, nested included, compiler-generated excluded) whose name or namespace says Kvm or Linux.</summary>
    internal static IReadOnlyList<string> KernelNamedTypes(Assembly assembly) =>
        [.. assembly.GetTypes()
            .Where(t => !t.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), inherit: false))
            .Select(t => t.FullName ?? t.Name)
            .Where(n => n.Contains("Kvm", StringComparison.OrdinalIgnoreCase) || n.Contains("Linux", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)];

    [Fact]
    public void No_type_in_S2Lab_Arch_names_Kvm_or_Linux()
    {
        Assert.Equal("S2Lab.Arch", Arch.GetName().Name);
        Assert.Empty(KernelNamedTypes(Arch));
    }

    [Fact]
    public void The_check_sees_Linux_encodings_in_the_Kernel_assembly()
    {
        // The same check over the Kernel assembly must find the moved types, so it is not vacuous.
        var kernel = typeof(KvmS2MemType).Assembly;
        var found = KernelNamedTypes(kernel);
        Assert.Contains(typeof(KvmS2MemType).FullName, found);
        Assert.Contains(typeof(LinuxMair).FullName, found);
        Assert.Contains(typeof(KvmPgtableProt).FullName, found);
        Assert.Equal("S2Lab.Kernel.Arm64", typeof(CombineTable).Namespace);
    }
}
