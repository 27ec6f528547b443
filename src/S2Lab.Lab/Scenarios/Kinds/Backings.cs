using S2Lab.Kernel.Mm;
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

/// <summary>What a piece of a <c>vmas</c> region is: anonymous RAM, or a driver's VM_PFNMAP or VM_MIXEDMAP mapping.</summary>
public enum VmaMapKind
{
    Anon,
    Pfnmap,
    Mixedmap,
}

/// <summary>Whose pfns a driver piece maps: device memory outside the host's linear map, or kernel RAM inside it.</summary>
public enum VmaPfns
{
    Device,
    Ram,
}

/// <summary>
/// One VMA of a <c>vmas</c> region: [Offset, Offset + Size) of the region, its kind, its pgprot (stage-1 attribute
/// index), VM_ALLOW_ANY_UNCACHED, and the pfns behind a driver piece.
/// </summary>
public sealed record VmaPieceSpec(ulong Offset, ulong Size, VmaMapKind Map, MtIndex PgProt, bool AllowAnyUncached, VmaPfns Pfns)
{
    public ulong End => Offset + Size;
}

/// <summary><c>backing: vmas</c>: the region is covered by these VMAs (ascending, not overlapping); the rest are holes.</summary>
public sealed record VmasBackingSpec(IReadOnlyList<VmaPieceSpec> Pieces) : RegionBackingSpec("vmas");

/// <summary>
/// <c>backing: vmas</c>: a memslot spanning several VMAs with holes between them (issue 12). Anonymous pieces are
/// read-write anonymous memory; <c>pfnmap</c> and <c>mixedmap</c> pieces are the mmap of a model driver (like the
/// oracle's test module) that maps its pfns with the declared pgprot and flags. The Lab installs one driver file per
/// piece on every host (<see cref="Install"/>); the VMM only opens and mmaps the file.
/// </summary>
internal sealed class VmasBackingKind : IBackingKind
{
    internal static readonly Dictionary<string, VmaMapKind> MapWords = new()
    {
        ["anon"] = VmaMapKind.Anon,
        ["pfnmap"] = VmaMapKind.Pfnmap,
        ["mixedmap"] = VmaMapKind.Mixedmap,
    };

    internal static readonly Dictionary<string, MtIndex> PgProtWords = new()
    {
        ["mt_normal"] = MtIndex.MT_NORMAL,
        ["mt_normal_tagged"] = MtIndex.MT_NORMAL_TAGGED,
        ["mt_normal_nc"] = MtIndex.MT_NORMAL_NC,
        ["mt_device_ngnrne"] = MtIndex.MT_DEVICE_nGnRnE,
        ["mt_device_ngnre"] = MtIndex.MT_DEVICE_nGnRE,
    };

    internal static readonly Dictionary<string, VmaPfns> PfnWords = new()
    {
        ["device"] = VmaPfns.Device,
        ["ram"] = VmaPfns.Ram,
    };

    public string Name => "vmas";

    public IReadOnlyList<string> Fields => ["vmas"];

    public RegionBackingSpec? Read(BackingReader r)
    {
        var b = r.B;
        var listPath = $"{r.Path}.vmas";
        var listNode = r.F.Req("vmas");
        if (listNode is null)
            return null;
        var list = b.List(listNode, listPath);
        if (list.Count == 0)
        {
            b.Error(listNode.Start, listPath, "a vmas region needs at least one VMA");
            return null;
        }

        var pieces = new List<VmaPieceSpec>();
        var ok = true;
        for (int i = 0; i < list.Count; i++)
        {
            var p = $"{listPath}[{i}]";
            var f = b.Map(list[i], p);
            if (f is null)
            {
                ok = false;
                continue;
            }

            var offset = b.Size(f.Req("offset"), $"{p}.offset");
            var size = b.Size(f.Req("size"), $"{p}.size");
            var map = b.Enum(f.Opt("map"), $"{p}.map", MapWords) ?? VmaMapKind.Anon;
            var pgprotNode = f.Opt("pgprot");
            var pgprot = b.Enum(pgprotNode, $"{p}.pgprot", PgProtWords);
            var anyNode = f.Opt("allowAnyUncached");
            var any = b.Bool(anyNode, $"{p}.allowAnyUncached") ?? false;
            var pfnsNode = f.Opt("pfns");
            var pfns = b.Enum(pfnsNode, $"{p}.pfns", PfnWords) ?? VmaPfns.Device;
            f.Done();
            if (offset is null || size is null || (pgprotNode is not null && pgprot is null))
            {
                ok = false;
                continue;
            }

            bool Bad(SyntaxNode at, string field, string message)
            {
                b.Error(at.Start, $"{p}.{field}", message);
                return ok = false;
            }

            if (!IsAligned(offset.Value, PAGE_SIZE))
                Bad(f.Opt("offset")!, "offset", "a VMA starts on a page boundary (4 KiB)");
            if (size == 0 || !IsAligned(size.Value, PAGE_SIZE))
                Bad(f.Opt("size")!, "size", "a VMA is a non-zero multiple of the page size (4 KiB)");
            else if (r.RegionSize is { } rs && (offset.Value >= rs || size.Value > rs - offset.Value))
                Bad(f.Opt("size")!, "size", $"the VMA [{offset:x}, {offset + size:x}) ends beyond the region ({rs:x} bytes)");
            else if (pieces.Count > 0 && offset.Value < pieces[^1].End)
                Bad(f.Opt("offset")!, "offset", $"VMAs are listed in address order without overlap: this one starts before the previous one ends ({pieces[^1].End:x})");
            if (map == VmaMapKind.Anon)
            {
                // Anonymous memory is what the kernel makes it: MT_NORMAL, no driver flags, pages from the allocator.
                if (pgprotNode is not null)
                    Bad(pgprotNode, "pgprot", "an anon VMA is MT_NORMAL: pgprot needs map: pfnmap or mixedmap");
                if (anyNode is not null)
                    Bad(anyNode, "allowAnyUncached", "VM_ALLOW_ANY_UNCACHED is a driver's flag: it needs map: pfnmap or mixedmap");
                if (pfnsNode is not null)
                    Bad(pfnsNode, "pfns", "an anon VMA's pages come from the page allocator: pfns needs map: pfnmap or mixedmap");
            }
            else if (pgprotNode is null)
            {
                Bad(f.Node, "pgprot", $"a {map.ToString().ToLowerInvariant()} VMA needs its pgprot (MT_NORMAL, MT_NORMAL_TAGGED, MT_NORMAL_NC, MT_DEVICE_nGnRnE or MT_DEVICE_nGnRE)");
            }

            if (ok)
                pieces.Add(new VmaPieceSpec(offset.Value, size.Value, map, pgprot ?? MtIndex.MT_NORMAL, any, pfns));
        }

        return ok ? new VmasBackingSpec(pieces) : null;
    }

    public RegionBacking ToConfig(VmRegionSpec region) =>
        new MappedPieces(((VmasBackingSpec)region.BackingSpec).Pieces
            .Select((p, i) => new MappedPiece(p.Offset, p.Size, p.Map == VmaMapKind.Anon ? null : FilePath(region, i))).ToList());

    public string ReportKind(VmRegionSpec region, LabHost? lastHost) => "vmas";

    /// <summary>The device file of piece <paramref name="index"/> of <paramref name="region"/> (unique per region entry of the file).</summary>
    public static string FilePath(VmRegionSpec region, int index) => $"/dev/s2lab-vma/L{region.At.Line}.{region.Name}/{index}";

    /// <summary>Installs the driver of every driver piece of <paramref name="region"/> on <paramref name="host"/>.</summary>
    public static void Install(VmRegionSpec region, LabHost host)
    {
        if (region.BackingSpec is not VmasBackingSpec spec)
            return;
        for (int i = 0; i < spec.Pieces.Count; i++)
        {
            if (spec.Pieces[i].Map == VmaMapKind.Anon)
                continue;
            var path = FilePath(region, i);
            var driver = new VmaPieceDriver(host.Host, $"{region.Name} vma{i}", spec.Pieces[i]);
            host.Files.Add(path, driver.Mmap);
        }
    }
}
