using S2Lab.Lab.Scenarios;

namespace S2Lab.Lab.Tests;

/// <summary>Malformed scenario files: every error names file, line, column and field, and nothing is built.</summary>
public class ValidationTests
{
    private const string Good = """
        name: t
        hosts:
          grace:
            cpu: neoverse-v2
            design: linux-6.17
            devices:
              gpu0: { kind: nvgrace-gpu, usemem: 512MiB }
          altra: { cpu: neoverse-n1, design: linux-6.17 }
        vms:
          vm:
            host: grace
            memory:
              - { name: ram, gpa: 0x40000000, size: 64MiB }
            devices:
              - device: gpu0
                regions:
                  usemem: { gpa: 0x4000000000 }
        steps:
          - { id: s, start: vm }
          - { access: { vm: vm, region: ram, mair: 0xFF, type: read } }
        """;

    private static IReadOnlyList<ScenarioError> Errors(string text, string file = "t.yaml") =>
        Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(text, file)).Errors;

    private static ScenarioError Single(string text, string file = "t.yaml")
    {
        var errors = Errors(text, file);
        Assert.True(errors.Count == 1, string.Join(Environment.NewLine, errors));
        return errors[0];
    }

    [Fact]
    public void The_good_file_loads()
    {
        var s = ScenarioLoader.Parse(Good, "t.yaml");
        Assert.Equal(2, s.Hosts.Count);
        Assert.Equal(["ram", "gpu0.usemem"], s.Vm("vm").Regions.Select(r => r.Name));
    }

    [Fact]
    public void Missing_required_field_names_the_field_at_its_mapping()
    {
        var e = Single(Good.Edit("    host: grace\n", ""));
        Assert.Equal("vms.vm.host", e.Field);
        Assert.Equal("missing required field", e.Message);
        Assert.Equal(new SourceMark(11, 5), e.At);
        Assert.Equal("t.yaml", e.File);
    }

    [Fact]
    public void Wrong_type_names_line_column_and_field()
    {
        var e = Single(Good.Edit("size: 64MiB", "size: [64]"));
        Assert.Equal("vms.vm.memory[0].size", e.Field);
        Assert.Contains("expected a string, found a list", e.Message, StringComparison.Ordinal);
        Assert.Equal(13, e.At.Line);
        Assert.Equal(45, e.At.Column);
        Assert.StartsWith("t.yaml:13:45: vms.vm.memory[0].size: ", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_word_where_a_number_belongs()
    {
        var e = Single(Good.Edit("gpa: 0x40000000,", "gpa: lots,"));
        Assert.Equal("vms.vm.memory[0].gpa", e.Field);
        Assert.Contains("'lots'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_host()
    {
        var e = Single(Good.Edit("    host: grace", "    host: graec"));
        Assert.Equal("vms.vm.host", e.Field);
        Assert.Equal(new SourceMark(11, 11), e.At);
        Assert.Contains("unknown host 'graec'; known hosts: grace, altra", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Overlapping_regions_are_reported_at_the_later_region()
    {
        var e = Single(Good.Edit("usemem: { gpa: 0x4000000000 }", "usemem: { gpa: 0x43000000 }"));
        Assert.Equal("vms.vm.gpu0.usemem", e.Field);
        Assert.Equal(17, e.At.Line);
        Assert.Contains("overlaps region 'ram'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Migration_to_an_unknown_host()
    {
        var e = Single(Good + "\n  - { migrate: { vm: vm, to: nowhere } }\n");
        Assert.Equal("steps[2].migrate.to", e.Field);
        Assert.Equal(21, e.At.Line);
        Assert.Contains("unknown host 'nowhere'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Migration_to_a_host_without_the_device()
    {
        var e = Single(Good + "\n  - { migrate: { vm: vm, to: altra } }\n");
        Assert.Equal("steps[2].migrate.to", e.Field);
        Assert.Contains("has no device 'gpu0'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_field_lists_the_known_ones()
    {
        var e = Single(Good.Edit("    host: grace", "    host: grace\n    hots: 1"));
        Assert.Equal("vms.vm.hots", e.Field);
        Assert.Contains("unknown field; expected one of:", e.Message, StringComparison.Ordinal);
        Assert.Contains("host", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_design_preset_and_device_kind()
    {
        var errors = Errors(Good.Edit("design: linux-6.17\n    devices", "design: linux-7.0\n    devices")
            .Edit("cpu: neoverse-n1", "cpu: neoverse-n9")
            .Edit("kind: nvgrace-gpu", "kind: nvgrace"));
        Assert.Contains(errors, e => e.Field == "hosts.grace.design" && e.Message.Contains("known designs: linux-6.8", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "hosts.altra.cpu" && e.Message.Contains("unknown CPU preset 'neoverse-n9'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field == "hosts.grace.devices.gpu0.kind");
    }

    [Fact]
    public void Every_error_is_reported_in_one_pass_in_file_order()
    {
        var errors = Errors(Good.Edit("mair: 0xFF", "mair: 0x1FF").Edit("    host: grace", "    host: x"));
        Assert.True(errors.Count >= 2);
        Assert.Equal(errors.OrderBy(e => e.At.Line).ThenBy(e => e.At.Column), errors);
    }

    [Fact]
    public void Expect_must_refer_to_an_earlier_step_and_use_its_fields()
    {
        var e1 = Single(Good + "\n  - { expect: { step: later, outcome: ok } }\n");
        Assert.Equal("steps[2].expect.step", e1.Field);
        var e2 = Single(Good + "\n  - { expect: { step: s, stage2: normal } }\n");
        Assert.Equal("steps[2].expect.stage2", e2.Field);
        Assert.Contains("cannot be checked on a start step", e2.Message, StringComparison.Ordinal);
        var e3 = Single(Good + "\n  - { expect: { scorecard: { earlyDiscovery: maybe } } }\n");
        Assert.Equal("steps[2].expect.scorecard.earlyDiscovery", e3.Field);
    }

    [Fact]
    public void Access_outside_its_region()
    {
        var e = Single(Good.Edit("region: ram, mair", "region: ram, offset: 0x4000000, mair"));
        Assert.Equal("steps[1].access.offset", e.Field);
    }

    [Fact]
    public void A_step_has_exactly_one_action()
    {
        var e = Single(Good.Edit("- { id: s, start: vm }", "- { id: s, start: vm, stop: vm }"));
        Assert.Equal("steps[0]", e.Field);
        Assert.Contains("exactly one action", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void YAML_syntax_errors_have_positions()
    {
        var e = Single("name: t\nhosts: [\n");
        Assert.Equal("t.yaml", e.File);
        Assert.True(e.At.Line >= 2);
        Assert.Contains("YAML syntax", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JSON_errors_name_line_column_and_field()
    {
        const string json = """
            {
              "name": "t",
              "hosts": { "h": { "cpu": "neoverse-v2", "design": "linux-6.17" } },
              "vms": { "vm": { "host": "h", "memory": [ { "name": "ram", "gpa": "0x0", "size": true } ] } },
              "steps": []
            }
            """;
        var e = Single(json, "t.json");
        Assert.Equal("t.json", e.File);
        Assert.Equal("vms.vm.memory[0].size", e.Field);
        Assert.Equal(4, e.At.Line);
        Assert.Contains("'true'", e.Message, StringComparison.Ordinal);
        var syntax = Single("{ \"name\": \"t\",\n  \"hosts\": { ,\n}", "t.json");
        Assert.Equal(2, syntax.At.Line);
        Assert.Contains("JSON syntax", syntax.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_keys_are_errors()
    {
        var e = Single(Good.Edit("    host: grace", "    host: grace\n    host: altra"));
        Assert.Equal("vms.vm.host", e.Field);
        Assert.Equal("duplicate key", e.Message);
    }

    [Theory]
    [InlineData("4096", 4096UL)]
    [InlineData("0x1000", 4096UL)]
    [InlineData("0b1000", 8UL)]
    [InlineData("64MiB", 64UL << 20)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("0x4000_0000", 0x4000_0000UL)]
    public void Sizes(string text, ulong expected)
    {
        Assert.True(Binder.TryParseSize(text, out var v));
        Assert.Equal(expected, v);
    }

    [Theory]
    [InlineData("")]
    [InlineData("12XB")]
    [InlineData("0x")]
    [InlineData("-1")]
    [InlineData("99999999999999999999")]
    [InlineData("17179869184GiB")]
    public void Not_sizes(string text) => Assert.False(Binder.TryParseSize(text, out _));

    // Offsets near 2^64 must not wrap around into the region (the bounds checks compare without adding).
    [Fact]
    public void Access_offset_that_would_wrap_is_an_error()
    {
        var e = Single(Good.Edit("region: ram, mair: 0xFF, type: read", "region: ram, offset: 0xFFFFFFFFFFFFFFF8, mair: 0xFF, type: read"));
        Assert.Equal("steps[1].access.offset", e.Field);
    }

    [Fact]
    public void Munmap_range_that_would_wrap_is_an_error()
    {
        var e = Single(Good.Edit("  - { access: { vm: vm, region: ram, mair: 0xFF, type: read } }",
            "  - { munmap: { vm: vm, region: ram, offset: 0xFFFFFFFFFFFFF000, size: 0x2000 } }"));
        Assert.Equal("steps[1].munmap.size", e.Field);
    }

    [Fact]
    public void Dirty_pages_that_would_wrap_are_an_error()
    {
        var e = Errors(Good.Edit("  - { access: { vm: vm, region: ram, mair: 0xFF, type: read } }",
            "  - { migrate: { vm: vm, to: altra, dirty: [{ region: ram, offset: 0xFFFFFFFFFFFFF000, pages: 2 }] } }"));
        // (altra in this file has no gpu0, which is reported too; the dirty range must be reported on its own.)
        Assert.Contains(e, x => x.Field == "steps[1].migrate.dirty[0]" && x.Message.Contains("do not fit", StringComparison.Ordinal));
    }
}
