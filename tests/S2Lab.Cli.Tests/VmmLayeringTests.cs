using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace S2Lab.Cli.Tests;

/// <summary>
/// docs/architecture.md, "Where the seams live": the VMM and the real-Linux backend see the kernel only as userspace
/// does. Every type S2Lab.Vmm or S2Lab.Linux references from the S2Lab.Kernel assembly must be in
/// S2Lab.Kernel.Kvm.Uapi (KVM's uAPI, errno, and the host and guest seams), never the model's Mm, Drivers or Kvm.
/// </summary>
public class VmmLayeringTests
{
    /// <summary>The full names of the types <paramref name="assembly"/> references from the assembly named <paramref name="target"/>.</summary>
    private static List<string> ReferencedTypes(Assembly assembly, string target)
    {
        using var stream = File.OpenRead(assembly.Location);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var found = new List<string>();
        foreach (var handle in md.TypeReferences)
        {
            var t = md.GetTypeReference(handle);
            // A nested type's scope is its declaring type: the outermost one names the namespace and the assembly.
            var outer = t;
            var name = md.GetString(t.Name);
            while (outer.ResolutionScope.Kind == HandleKind.TypeReference)
            {
                outer = md.GetTypeReference((TypeReferenceHandle)outer.ResolutionScope);
                name = md.GetString(outer.Name) + "+" + name;
            }

            if (outer.ResolutionScope.Kind != HandleKind.AssemblyReference)
                continue;
            var asm = md.GetAssemblyReference((AssemblyReferenceHandle)outer.ResolutionScope);
            if (md.GetString(asm.Name) == target)
                found.Add($"{md.GetString(outer.Namespace)}.{name}");
        }

        return found;
    }

    [Theory]
    [InlineData("S2Lab.Vmm")]
    [InlineData("S2Lab.Linux")]
    public void References_only_the_Uapi_namespace_of_the_kernel(string assemblyName)
    {
        var assembly = Assembly.Load(assemblyName);
        var refs = ReferencedTypes(assembly, "S2Lab.Kernel");
        Assert.Contains("S2Lab.Kernel.Kvm.Uapi.IKvmSystem", refs); // the scan sees the kernel references
        var outside = refs.Where(r => !r.StartsWith("S2Lab.Kernel.Kvm.Uapi.", StringComparison.Ordinal)).Order().ToList();
        Assert.True(outside.Count == 0, $"{assemblyName} uses kernel types outside S2Lab.Kernel.Kvm.Uapi:\n" + string.Join("\n", outside));
    }

    [Fact]
    public void The_scan_finds_model_types_where_they_are_used()
    {
        // S2Lab.Lab builds the VMM host from the model: its references must show Kernel.Model, or the scan is blind.
        var refs = ReferencedTypes(Assembly.Load("S2Lab.Lab"), "S2Lab.Kernel");
        Assert.Contains("S2Lab.Kernel.Model.ModelAddressSpace", refs);
        Assert.Contains(refs, r => r.StartsWith("S2Lab.Kernel.Mm.", StringComparison.Ordinal));
    }
}
