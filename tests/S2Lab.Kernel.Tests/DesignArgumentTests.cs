using CsCheck;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;

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

    /// <summary>One design string, one parser and one printer: every registered design with each declared argument (and none) prints and parses back to itself, and builds that design.</summary>
    [Fact]
    public void DesignRef_round_trip_over_the_registry()
    {
        var entries = KvmDesigns.All;
        Gen.Select(Gen.Int[0, entries.Count - 1], Gen.Int[-1, 8]).Sample((e, a) =>
        {
            var entry = entries[e];
            string? arg = a < 0 || entry.Arguments.Count == 0 ? null : entry.Arguments[a % entry.Arguments.Count];
            var r = new DesignRef(entry.Name, arg);
            Assert.Equal(r, DesignRef.Parse(r.ToString()));
            var design = KvmDesigns.Create(r);
            Assert.Equal(entry.DesignType, design.GetType());
            Assert.Same(entry, KvmDesigns.EntryOf(design));
            Assert.Equal(design, KvmDesigns.Create(r.ToString()), DesignNameComparer.Instance);
        });
    }

    /// <summary>The round trip holds for any name and argument the syntax allows, not only registered ones.</summary>
    [Fact]
    public void DesignRef_round_trip_over_generated_names_and_arguments()
    {
        var word = Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789.-_:"].Array[1, 12].Select(c => new string(c));
        Gen.Select(word, word, Gen.Bool).Sample((name, arg, withArg) =>
        {
            var r = new DesignRef(name, withArg ? arg : null);
            Assert.True(DesignRef.TryParse(r.ToString(), out var back, out var error), error);
            Assert.Equal(r, back);
        });
    }

    /// <summary>
    /// A design takes one argument: a second value (the old printer joined several parameters with ',') or a second
    /// '=' is refused with the text, not passed on as the argument "on,off".
    /// </summary>
    [Theory]
    [InlineData("proposal-module-param=on,off")]
    [InlineData("proposal-module-param=on=off")]
    [InlineData("=on")]
    [InlineData("proposal-module-param=")]
    [InlineData("")]
    public void DesignRef_refuses_what_is_not_one_name_and_one_argument(string text)
    {
        Assert.False(DesignRef.TryParse(text, out _, out var error));
        Assert.Contains($"'{text}'", error);
        Assert.Null(KvmDesigns.TryCreate(text, out var createError));
        Assert.Equal(error, createError);
    }

    /// <summary>
    /// Rule 21: a design's registration declares its extra memslot flags (its uAPI). What it accepts on a host is never
    /// more than that, and on some host (FWB and DIC) it is all of it.
    /// </summary>
    [Fact]
    public void Rule21_declared_memslot_flags_bound_what_each_design_accepts()
    {
        foreach (var entry in KvmDesigns.All)
        {
            var design = entry.Create(null);
            var accepted = CpuPresets.All.Select(p => design.ExtraMemslotFlags(p.Model)).ToList();
            Assert.All(accepted, f => Assert.Equal(KvmMemFlags.None, f & ~entry.ExtraMemslotFlags));
            Assert.Contains(entry.ExtraMemslotFlags, accepted);
        }

        Assert.Equal(KvmMemFlags.ENABLE_CACHEABLE_PFNMAP, KvmDesigns.Find("proposal-memslot-flag")!.ExtraMemslotFlags);
        Assert.Equal(KvmMemFlags.None, KvmDesigns.Find("linux-6.17")!.ExtraMemslotFlags);
    }

    private sealed class DesignNameComparer : IEqualityComparer<IKvmDesign>
    {
        public static readonly DesignNameComparer Instance = new();

        public bool Equals(IKvmDesign? x, IKvmDesign? y) => x?.GetType() == y?.GetType() && x?.Name == y?.Name;

        public int GetHashCode(IKvmDesign obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
