using S2Lab.Lab.Runner;
using S2Lab.Vmm;
using static S2Lab.Kernel.Mm.PageSizes;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary>The backing of a VM region as read from the file: its kind's name and that kind's own fields.</summary>
public record RegionBackingSpec(string Kind)
{
    public static readonly RegionBackingSpec Anon = new("anon");

    public static readonly RegionBackingSpec Device = new("device");
}

/// <summary>hugetlbfs backing with its huge page size.</summary>
public sealed record HugetlbBackingSpec(ulong PageSize) : RegionBackingSpec("hugetlb");

/// <summary><c>backing: anon</c>: MAP_ANONYMOUS|MAP_PRIVATE memory (the default).</summary>
internal sealed class AnonBackingKind : IBackingKind
{
    public string Name => "anon";

    public IReadOnlyList<string> Fields => [];

    public RegionBackingSpec? Read(BackingReader r) => RegionBackingSpec.Anon;

    public RegionBacking ToConfig(VmRegionSpec region) => new AnonymousRam();

    public string ReportKind(VmRegionSpec region, LabHost? lastHost) => "anon";
}

/// <summary>
/// <c>backing: hugetlb</c>: a hugetlbfs mapping (VM_HUGETLB) of <c>hugePageSize</c> pages (default 2MiB). The model
/// host has 2MiB and 1GiB pools; for another size its mmap fails EINVAL, as hugetlbfs does for a size the host has
/// no hstate for (the start reports it on the region's memslot line).
/// </summary>
internal sealed class HugetlbBackingKind : IBackingKind
{
    public string Name => "hugetlb";

    public IReadOnlyList<string> Fields => ["hugePageSize"];

    public RegionBackingSpec? Read(BackingReader r)
    {
        var node = r.F.Opt("hugePageSize");
        var size = r.B.Size(node, $"{r.Path}.hugePageSize") ?? PMD_SIZE;
        if (size < PAGE_SIZE || (size & (size - 1)) != 0)
        {
            r.B.Error(node!.Start, $"{r.Path}.hugePageSize", "a huge page size is a power of two of at least 4 KiB");
            return null;
        }

        return new HugetlbBackingSpec(size);
    }

    public RegionBacking ToConfig(VmRegionSpec region) => new HugetlbRam(region.BackingSpec is HugetlbBackingSpec h ? h.PageSize : PMD_SIZE);

    public string ReportKind(VmRegionSpec region, LabHost? lastHost) => "hugetlb";
}

/// <summary>A device region (listed under a VM's <c>devices</c>): the device driver's mmap.</summary>
internal sealed class DeviceBackingKind : IBackingKind
{
    public string Name => "device";

    public IReadOnlyList<string> Fields => [];

    public RegionBackingSpec? Read(BackingReader r) => RegionBackingSpec.Device;

    public RegionBacking ToConfig(VmRegionSpec region) => new DeviceMemory(region.Device!, region.DeviceRegion!);

    public string ReportKind(VmRegionSpec region, LabHost? lastHost) =>
        lastHost?.Region(region.Device!, region.DeviceRegion!) is { } d ? ScenarioRunner.RunState.KindName(d.Kind, null) : "device";
}
