using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>
/// The scenario words gh200, gb200 and gb300 read into the driver's own <see cref="NvGraceGpuModel"/> (no Lab mirror).
/// Only Grace Hopper has the MIG hardware bug, so only there nvgrace-gpu carves out a non-cacheable resmem; Grace
/// Blackwell (GB200, GB300) exposes all device memory as usemem.
/// </summary>
public class NvgraceModelTests
{
    private static string Text(string gpu) => $$"""
        name: gpu
        hosts:
          grace: { cpu: neoverse-v2, design: linux-6.17, devices: { gpu0: { kind: nvgrace-gpu, usemem: 512MiB, {{gpu}} } } }
        vms:
          vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 2MiB } ] }
        steps:
          - start: vm
        """;

    [Theory]
    [InlineData("model: gh200", NvGraceGpuModel.GH200, "usemem,resmem,bar0")]
    [InlineData("bar0: 16MiB", NvGraceGpuModel.GH200, "usemem,resmem,bar0")]
    [InlineData("model: gb200", NvGraceGpuModel.GB200, "usemem,bar0")]
    [InlineData("model: gb300", NvGraceGpuModel.GB300, "usemem,bar0")]
    public void A_model_word_is_the_drivers_model_and_decides_resmem(string field, NvGraceGpuModel model, string regions)
    {
        var gpu = Assert.IsType<NvgraceGpuSpec>(ScenarioLoader.Parse(Text(field), "gpu.yaml").Hosts.Single().Devices.Single());
        Assert.Equal(model, gpu.Model);
        Assert.Equal(regions, string.Join(",", gpu.Regions.Select(r => r.Name)));
    }

    [Theory]
    [InlineData("model: gb300, resmem: 1GiB", "resmem", "gb300 has no resmem (MIG works with cached resmem on Grace Blackwell)")]
    [InlineData("model: gh200, resmem: 0", "resmem", "gh200 always has a resmem region (1 GiB in real hardware)")]
    [InlineData("model: h100", "model", "'h100' is not one of: gh200, gb200, gb300")]
    public void A_model_error_names_the_model_by_its_word(string field, string where, string message)
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Text(field), "gpu.yaml"));
        var err = Assert.Single(e.Errors);
        Assert.Equal(($"hosts.grace.devices.gpu0.{where}", message), (err.Field, err.Message));
    }

    [Theory]
    [InlineData(NvGraceGpuModel.GH200, true)]
    [InlineData(NvGraceGpuModel.GB200, false)]
    [InlineData(NvGraceGpuModel.GB300, false)]
    public void The_driver_carves_resmem_only_for_the_MIG_hardware_bug(NvGraceGpuModel model, bool resmem)
    {
        var h = Host.Create("h", "neoverse-v2", "linux-6.17");
        var gpu = new NvGraceGpu(h, "gpu0", new NvGraceGpuConfig(model, 2UL << 30, MemblkSize: 512UL << 20));
        Assert.Equal(resmem, model.HasResmem());
        Assert.Equal(resmem, gpu.Resmem is not null);
        Assert.Equal(resmem ? 1UL << 30 : 2UL << 30, gpu.Usemem.Size);
    }
}
