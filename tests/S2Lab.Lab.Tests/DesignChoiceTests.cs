using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>
/// Design choices as the CLI takes them (<c>DESIGN:VARIANT</c>) and the kernel design (<see cref="DesignRef"/>) a run
/// of each choice uses: one parser, one printer (docs/architecture.md step 3).
/// </summary>
public class DesignChoiceTests
{
    /// <summary>
    /// Every run of <c>--design all</c> on the demo (which also defines a scenario variant) is named by a design and a
    /// variant label. Written back as <c>DESIGN:VARIANT</c>, the label parses to a choice whose kernel spec is the design
    /// every host of that run was built with, as its probe recorded it.
    /// </summary>
    [Fact]
    public void Every_variant_label_of_design_all_maps_back_to_the_kernel_spec_it_ran_with()
    {
        var scenario = DemoScenario.Load();
        var report = ScenarioRunner.Run(scenario, "all");
        Assert.Contains(report.Runs, r => r.Variant == "param=on");
        Assert.Contains(report.Runs, r => r.Variant == "flag=prefer-migratable");
        foreach (var run in report.Runs)
        {
            var text = run.Variant.Length == 0 ? run.Design : $"{run.Design}{DesignCatalog.VariantSeparator}{run.Variant}";
            var choice = DesignCatalog.ParseChoice(text, scenario.Variants, allowAll: false, out var error);
            Assert.True(choice is not null, $"{text}: {error}");
            var spec = DesignCatalog.KernelSpec(choice, scenario.Variants);
            Assert.Equal(run.Design, spec.Name);
            Assert.All(run.Hosts, h => Assert.Equal(spec.ToString(), h.Design));
            Assert.All(run.Hosts, h => Assert.Equal(spec, DesignRef.Parse(h.Design)));
        }
    }

    /// <summary>A design variant sets the design's one argument; a module-parameter variant gives <c>NAME=on</c>.</summary>
    [Fact]
    public void A_parameter_variant_is_the_designs_argument()
    {
        var choice = DesignCatalog.ParseChoice("proposal-module-param:param=on", [], allowAll: false, out _)!;
        Assert.Equal(new DesignRef("proposal-module-param", "on"), DesignCatalog.KernelSpec(choice, []));
        var bare = DesignCatalog.ParseChoice("proposal-module-param", [], allowAll: false, out _)!;
        Assert.Equal(new DesignRef("proposal-module-param", "off"), DesignCatalog.KernelSpec(bare, []));
        Assert.Equal(new DesignRef("linux-6.17"), DesignCatalog.KernelSpec(new DesignChoice("linux-6.17", null), []));
    }

    /// <summary>
    /// The latent bug of the old printer: two parameters were joined into the argument "a,b". A design has one argument,
    /// so a second parameter is an error naming it.
    /// </summary>
    [Fact]
    public void A_second_design_parameter_is_an_error_not_a_joined_argument()
    {
        var parameters = new Dictionary<string, string> { [DesignCatalog.ParameterName] = "on", ["other"] = "x" };
        var e = Assert.Throws<ArgumentException>(() => DesignCatalog.RefOf("proposal-module-param", parameters));
        Assert.Contains("'other'", e.Message);
    }
}
