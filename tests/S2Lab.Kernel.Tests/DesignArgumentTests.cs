using S2Lab.Kernel.Kvm.Designs;

namespace S2Lab.Kernel.Tests;

/// <summary>Designs declare their own argument values, so tools explore them without knowing design names.</summary>
public class DesignArgumentTests
{
    [Fact]
    public void Every_declared_argument_builds_a_design_and_undeclared_ones_are_refused()
    {
        foreach (var entry in KvmDesigns.All)
        {
            foreach (var arg in entry.Arguments)
                Assert.NotNull(KvmDesigns.TryCreate($"{entry.Name}={arg}", out _));
            if (entry.Arguments.Count == 0)
                Assert.Null(KvmDesigns.TryCreate($"{entry.Name}=on", out _));
        }
    }

    [Fact]
    public void The_module_parameter_design_declares_on_and_off()
    {
        var entry = KvmDesigns.All.Single(e => e.Name == "proposal-module-param");
        Assert.Equal(["on", "off"], entry.Arguments);
        Assert.True(((ProposalModuleParamDesign)entry.Create("on")).Enabled);
        Assert.False(((ProposalModuleParamDesign)entry.Create("off")).Enabled);
    }
}
