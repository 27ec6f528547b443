using S2Lab.Kernel.Drivers;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scenarios.Kinds;

/// <summary><c>kind: nvgrace-gpu</c>: the vfio-pci variant driver of NVIDIA Grace Hopper / Grace Blackwell GPUs.</summary>
internal sealed class NvgraceGpuDeviceKind : IDeviceKind
{
    /// <summary>The scenario words of the driver's models (<see cref="NvGraceGpuModel"/>); reports and errors name a model by its word.</summary>
    private static readonly Dictionary<string, NvGraceGpuModel> ModelWords = new()
    {
        ["gh200"] = NvGraceGpuModel.GH200,
        ["gb200"] = NvGraceGpuModel.GB200,
        ["gb300"] = NvGraceGpuModel.GB300,
    };

    private static string Word(NvGraceGpuModel model) => ModelWords.First(w => w.Value == model).Key;

    public string Name => "nvgrace-gpu";

    public IReadOnlyList<string> Fields => ["model", "usemem", "resmem", "bar0", "usememMapping"];

    public DeviceSpec? Read(DeviceReader r)
    {
        var (b, f, path) = (r.B, r.F, r.Path);
        var model = b.Enum(f.Opt("model"), $"{path}.model", ModelWords) ?? NvGraceGpuModel.GH200;
        var usemem = b.Size(f.Req("usemem"), $"{path}.usemem");
        var resNode = f.Opt("resmem");
        var resmem = b.Size(resNode, $"{path}.resmem") ?? (model.HasResmem() ? 1UL << 30 : 0);
        if (!model.HasResmem() && resmem != 0)
            b.Error(resNode!.Start, $"{path}.resmem", $"{Word(model)} has no resmem (MIG works with cached resmem on Grace Blackwell)");
        if (model.HasResmem() && resmem == 0)
            b.Error(resNode?.Start ?? f.At, $"{path}.resmem", $"{Word(model)} always has a resmem region (1 GiB in real hardware)");
        var bar0 = b.Size(f.Opt("bar0"), $"{path}.bar0") ?? 16UL << 20;
        var mapping = b.Enum(f.Opt("usememMapping"), $"{path}.usememMapping", ScenarioLoader.MappingWords) ?? NvGraceUsememMapping.Pfnmap;
        ScenarioLoader.CheckRegionSize(b, f, "usemem", usemem, path);
        ScenarioLoader.CheckRegionSize(b, f, "resmem", resmem == 0 ? null : resmem, path);
        ScenarioLoader.CheckRegionSize(b, f, "bar0", bar0, path);
        return usemem is null ? null : new NvgraceGpuSpec(r.Name, f.At, model, usemem.Value, resmem, bar0, mapping);
    }

    public void Install(DeviceSpec spec, LabHost host, RunVariant variant)
    {
        var g = (NvgraceGpuSpec)spec;
        // usemem is rounded down to MEMBLK_SIZE (512 MiB); a scaled-down usemem keeps that shape with the
        // largest power of two (up to 512 MiB) that divides it.
        var memblk = Math.Min(512UL << 20, g.UsememSize & (~g.UsememSize + 1));
        var mapping = variant.UsememMapping.TryGetValue(g.Name, out var m) ? m : g.UsememMapping;
        var gpu = new NvGraceGpu(host.Host, g.Name, new NvGraceGpuConfig(g.Model, g.UsememSize + g.ResmemSize, null, g.Bar0Size,
            g.ResmemSize == 0 ? 1UL << 30 : g.ResmemSize, memblk,
            mapping));
        host.Add(g.Name, DeviceMemoryPolicy.NvgraceDriver, "usemem", gpu.Usemem.Size, DeviceRegionKind.NvgraceUsemem, p => gpu.MmapUsemem(p));
        if (gpu.Resmem is { } res)
            host.Add(g.Name, DeviceMemoryPolicy.NvgraceDriver, "resmem", res.Size, DeviceRegionKind.NvgraceResmem, p => gpu.MmapResmem(p));
        host.Add(g.Name, DeviceMemoryPolicy.NvgraceDriver, "bar0", g.Bar0Size, DeviceRegionKind.VfioBar, p => gpu.MmapBar0(p));
    }
}

/// <summary>
/// <c>kind: vfio-pci</c>: a plain vfio-pci device with memory BARs. BAR numbers may have gaps: a 64-bit memory BAR
/// takes two BAR registers (PCI 3.0, 6.2.5.1), so a device with three 64-bit BARs has bar0, bar2 and bar4; vfio
/// reports each BAR at its own region index (VFIO_PCI_BAR0_REGION_INDEX + n).
/// </summary>
internal sealed class VfioPciDeviceKind : IDeviceKind
{
    private const ulong PageSize = 4096;

    public string Name => "vfio-pci";

    public IReadOnlyList<string> Fields => ["bars"];

    public DeviceSpec? Read(DeviceReader r)
    {
        var (b, f, path) = (r.B, r.F, r.Path);
        var bars = new List<(int, ulong)>();
        var bf = b.Map(f.Req("bars"), $"{path}.bars");
        if (bf is not null)
        {
            bf.AllRead();
            foreach (var (key, value) in bf.Entries)
            {
                var bp = $"{path}.bars.{key.Text}";
                if (key.Text.Length != 4 || !key.Text.StartsWith("bar", StringComparison.Ordinal) || key.Text[3] is < '0' or > '5')
                {
                    b.Error(key.Start, bp, "BARs are named bar0 .. bar5");
                    continue;
                }

                var size = b.Size(value, bp);
                if (size is not null && (size < PageSize || (size & (size - 1)) != 0))
                    b.Error(value.Start, bp, "a BAR size is a power of two of at least 4 KiB");
                else if (size is not null)
                    bars.Add((key.Text[3] - '0', size.Value));
            }

            if (bars.Count == 0 && !bf.Entries.Any())
                b.Error(bf.At, $"{path}.bars", "a vfio-pci device needs at least one BAR");
        }

        return new VfioPciSpec(r.Name, f.At, bars.OrderBy(x => x.Item1).ToList());
    }

    public void Install(DeviceSpec spec, LabHost host, RunVariant variant)
    {
        var v = (VfioPciSpec)spec;
        var dev = new VfioPciDevice(host.Host, v.Name, v.Bars.Select(b => (b.Index, b.Size)).ToArray());
        foreach (var (index, size) in v.Bars)
        {
            var i = index;
            host.Add(v.Name, DeviceMemoryPolicy.VfioPciDriver, $"bar{i}", size, DeviceRegionKind.VfioBar, p => dev.MmapBar(p, i));
        }
    }
}
