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
        var plain = DesignCatalog.ParseChoice("linux-6.17", [], allowAll: false, out _)!;
        Assert.Equal(new DesignRef("linux-6.17"), DesignCatalog.KernelSpec(plain, []));
    }

    /// <summary>
    /// The latent bug of the old printer: two parameters were joined into the argument "a,b". A host's design is a
    /// <see cref="DesignRef"/>, which has one argument, so a second parameter is refused where the file is read, naming
    /// it, and nothing is run.
    /// </summary>
    [Fact]
    public void A_second_design_parameter_is_a_located_error_not_a_joined_argument()
    {
        const string Text = """
            name: two
            hosts:
              grace: { cpu: neoverse-v2, design: proposal-module-param, params: { param: on, other: x } }
            vms:
              vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 2MiB } ] }
            steps:
              - start: vm
            """;
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Text, "two.yaml"));
        var err = Assert.Single(e.Errors);
        Assert.Equal(("hosts.grace.params.other", 3), (err.Field, err.At.Line));
        Assert.Equal("unknown parameter; proposal-module-param takes: param", err.Message);
    }

    /// <summary>A host's <c>design</c> and <c>params</c> are read into the kernel model's <see cref="DesignRef"/>: the argument as written (lower case), or the declared default.</summary>
    [Theory]
    [InlineData("design: linux-6.17", "linux-6.17")]
    [InlineData("design: proposal-module-param", "proposal-module-param=off")]
    [InlineData("design: proposal-module-param, params: { param: ON }", "proposal-module-param=on")]
    [InlineData("design: proposal-memslot-flag", "proposal-memslot-flag")]
    public void A_hosts_design_is_read_as_a_DesignRef(string fields, string expected)
    {
        var text = $$"""
            name: one
            hosts:
              grace: { cpu: neoverse-v2, {{fields}} }
            vms:
              vm: { host: grace, memory: [ { name: ram, gpa: 0x40000000, size: 2MiB } ] }
            steps:
              - start: vm
            """;
        Assert.Equal(DesignRef.Parse(expected), ScenarioLoader.Parse(text, "one.yaml").Hosts.Single().Design);
    }
}
