using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Vmm;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// Loads and validates scenario files (YAML, or JSON with the same schema). Either every check passes and a
/// <see cref="Scenario"/> comes back, or a <see cref="ScenarioException"/> lists every error with file, line, column
/// and field; nothing runs on an invalid file. The schema is documented in docs/scenario-schema.md.
/// </summary>
public static class ScenarioLoader
{
    private const ulong PageSize = 4096;

    /// <summary>Loads a file; JSON when the name ends in .json, YAML otherwise.</summary>
    public static Scenario LoadFile(string path)
    {
        // Bounded: a scenario is a few KiB; a huge file is refused before it is parsed.
        var text = InputFiles.TryReadText(path, InputFiles.MaxScenarioBytes, out var error)
            ?? throw new ScenarioException([new ScenarioError(path, new SourceMark(1, 1), "", error!)]);

        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>Parses scenario text; <paramref name="file"/> names it in errors and picks the syntax (.json or YAML).</summary>
    public static Scenario Parse(string text, string file, string? baseDirectory = null)
    {
        var root = file.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? SyntaxReaders.ParseJson(text, file)
            : SyntaxReaders.ParseYaml(text, file);
        var b = new Binder(file);
        var scenario = new Reader(b, baseDirectory ?? Directory.GetCurrentDirectory()).Read(root);
        if (b.Errors.Count > 0 || scenario is null)
        {
            var errors = b.Errors.Count > 0 ? b.Errors : [new ScenarioError(file, root.Start, "", "invalid scenario")];
            throw new ScenarioException(errors.OrderBy(e => e.At.Line).ThenBy(e => e.At.Column).ToList());
        }

        return scenario;
    }

    private static readonly Dictionary<string, CapabilityPolicy> PolicyWords = new()
    {
        ["trust-kernel"] = CapabilityPolicy.TrustKernel,
        ["check-capability"] = CapabilityPolicy.CheckCapability,
    };

    private static readonly Dictionary<string, CacheableFlagChoice> FlagWords = new()
    {
        ["prefer-cacheable"] = CacheableFlagChoice.PreferCacheable,
        ["prefer-migratable"] = CacheableFlagChoice.PreferMigratable,
    };

    private static readonly Dictionary<string, RamBacking> BackingWords = new()
    {
        ["anon"] = RamBacking.Anon,
        ["hugetlb"] = RamBacking.Hugetlb,
    };

    private static readonly Dictionary<string, NvGraceUsememMapping> MappingWords = new()
    {
        ["pfnmap"] = NvGraceUsememMapping.Pfnmap,
        ["mixedmap"] = NvGraceUsememMapping.Mixedmap,
    };

    private static readonly Dictionary<string, NvgraceModel> ModelWords = new()
    {
        ["gh200"] = NvgraceModel.Gh200,
        ["gb200"] = NvgraceModel.Gb200,
        ["gb300"] = NvgraceModel.Gb300,
    };

    private static readonly Dictionary<string, AccessType> AccessWords = new()
    {
        ["read"] = AccessType.Read,
        ["write"] = AccessType.Write,
        ["exec"] = AccessType.Exec,
    };

    private static readonly Dictionary<string, HostWriter> WriterWords = new()
    {
        ["vmm"] = HostWriter.Vmm,
        ["device"] = HostWriter.Device,
        ["previous-vm"] = HostWriter.PreviousVm,
    };

    private static readonly Dictionary<string, bool> OnOffWords = new()
    {
        ["on"] = true,
        ["off"] = false,
    };

    private static readonly string[] StepKinds = ["start", "stop", "access", "mprotect", "munmap", "migrate", "expect"];

    private sealed class Reader(Binder b, string baseDir)
    {
        private readonly Dictionary<string, HostSpec> _hosts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, VmSpec> _vms = new(StringComparer.Ordinal);
        private readonly Dictionary<string, StepSpec> _stepIds = new(StringComparer.Ordinal);

        // Names declared in the file whose definitions had errors: references to them report nothing more, so that one
        // mistake gives one error, not a cascade.
        private readonly HashSet<string> _badHosts = new(StringComparer.Ordinal);
        private readonly HashSet<string> _badVms = new(StringComparer.Ordinal);
        private readonly HashSet<(string Vm, string Region)> _badRegions = [];
        private readonly HashSet<string> _badStepIds = new(StringComparer.Ordinal);

        public Scenario? Read(SyntaxNode root)
        {
            var f = b.Map(root, "");
            if (f is null)
                return null;
            var name = b.Str(f.Req("name"), "name") ?? "";
            var description = b.Str(f.Opt("description"), "description") ?? "";

            var hostsNode = b.Map(f.Req("hosts"), "hosts");
            if (hostsNode is not null)
            {
                hostsNode.AllRead();
                if (!hostsNode.Entries.Any())
                    b.Error(hostsNode.At, "hosts", "at least one host is required");
                foreach (var (key, value) in hostsNode.Entries)
                {
                    var hn = b.Name(key, $"hosts.{key.Text}");
                    if (hn is not null && ReadHost(hn, value, $"hosts.{hn}") is { } h)
                        _hosts.TryAdd(hn, h);
                    else
                        _badHosts.Add(key.Text);
                }
            }

            var vmsNode = b.Map(f.Req("vms"), "vms");
            if (vmsNode is not null)
            {
                vmsNode.AllRead();
                foreach (var (key, value) in vmsNode.Entries)
                {
                    var vn = b.Name(key, $"vms.{key.Text}");
                    if (vn is not null && ReadVm(vn, value, $"vms.{vn}") is { } v)
                        _vms.TryAdd(vn, v);
                    else
                        _badVms.Add(key.Text);
                }
            }

            var variants = new List<VariantSpec>();
            var variantItems = b.List(f.Opt("variants"), "variants");
            for (int i = 0; i < variantItems.Count; i++)
            {
                if (ReadVariant(variantItems[i], $"variants[{i}]") is { } v)
                    variants.Add(v);
            }

            var steps = new List<StepSpec>();
            var stepsNode = f.Req("steps");
            var stepItems = b.List(stepsNode, "steps");
            for (int i = 0; i < stepItems.Count; i++)
            {
                var parsed = ReadStep(i, stepItems[i], $"steps[{i}]");
                if (parsed is null && stepItems[i] is MappingNode sm && sm.Entries.FirstOrDefault(e => e.Key.Text == "id").Value is ScalarNode { IsNull: false } badId)
                    _badStepIds.Add(badId.Text);
                if (parsed is { } s)
                {
                    steps.Add(s);
                    if (s.Id is not null && !_stepIds.TryAdd(s.Id, s))
                        b.Error(s.At, $"steps[{i}].id", $"step id '{s.Id}' is already used by step {_stepIds[s.Id].Index}");
                }
            }

            f.Done();
            return new Scenario(name, description, b.File, _hosts.Values.ToList(), _vms.Values.ToList(), steps, variants);
        }

        // ---- hosts ----

        private HostSpec? ReadHost(string name, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var cpuNode = f.Opt("cpu");
            var profileNode = f.Opt("profile");
            CpuModel? cpu = null;
            string cpuSource = "";
            Kernel.Kvm.KvmProfile? kvmProfile = null;
            if (cpuNode is not null && profileNode is not null)
                b.Error(profileNode.Start, $"{path}.profile", "give either cpu or profile, not both");
            else if (profileNode is not null)
                (cpu, cpuSource, kvmProfile) = ReadProfile(profileNode, $"{path}.profile", name);
            else if (cpuNode is null)
                b.Error(f.At, $"{path}.cpu", "missing required field (a CPU preset name, ID register values, or a profile)");
            else
                (cpu, cpuSource) = ReadCpu(cpuNode, $"{path}.cpu", name);

            var design = ReadDesign(f.Req("design"), f.Opt("params"), path);
            var devices = new List<DeviceSpec>();
            var devs = b.Map(f.Opt("devices"), $"{path}.devices");
            if (devs is not null)
            {
                devs.AllRead();
                foreach (var (key, value) in devs.Entries)
                {
                    var dn = b.Name(key, $"{path}.devices.{key.Text}");
                    if (dn is not null && ReadDevice(dn, value, $"{path}.devices.{dn}") is { } d)
                        devices.Add(d);
                }
            }

            f.Done();
            return cpu is null || design is null ? null : new HostSpec(name, cpu, cpuSource, design, devices, f.At) { KvmProfile = kvmProfile };
        }

        private (CpuModel?, string) ReadCpu(SyntaxNode node, string path, string hostName)
        {
            if (node is ScalarNode)
            {
                var preset = b.Str(node, path);
                if (preset is null)
                    return (null, "");
                var p = CpuPresets.Find(preset);
                if (p is null)
                {
                    b.Error(node.Start, path, $"unknown CPU preset '{preset}'; known presets: {string.Join(", ", CpuPresets.All.Select(x => x.Name))}");
                    return (null, "");
                }

                return (p.Model, $"preset {p.Name}");
            }

            var f = b.Map(node, path);
            if (f is null)
                return (null, "");
            var presetName = b.Str(f.Opt("preset"), $"{path}.preset");
            var basis = presetName is null ? null : CpuPresets.Find(presetName);
            if (presetName is not null && basis is null)
                b.Error(f.Opt("preset")!.Start, $"{path}.preset", $"unknown CPU preset '{presetName}'");
            var mmfr0 = b.Size(f.Opt("idAa64Mmfr0El1"), $"{path}.idAa64Mmfr0El1") ?? basis?.Model.Mmfr0.Value;
            var mmfr2 = b.Size(f.Opt("idAa64Mmfr2El1"), $"{path}.idAa64Mmfr2El1") ?? basis?.Model.Mmfr2.Value;
            var ctr = b.Size(f.Opt("ctrEl0"), $"{path}.ctrEl0") ?? basis?.Model.Ctr.Value;
            f.Done();
            if (mmfr0 is null || mmfr2 is null || ctr is null)
            {
                b.Error(f.At, path, "raw ID registers need idAa64Mmfr0El1, idAa64Mmfr2El1 and ctrEl0 (or a preset to start from)");
                return (null, "");
            }

            if (new IdAa64Mmfr0El1(mmfr0.Value).PaBits is null)
                b.Error(f.At, $"{path}.idAa64Mmfr0El1", $"PARange {mmfr0.Value & 0xF} is reserved");
            var source = basis is null ? "raw ID registers" : $"preset {basis.Name} with raw ID registers";
            return (CpuModel.FromRegisters(basis?.Name ?? hostName, mmfr0.Value, mmfr2.Value, ctr.Value), source);
        }

        private (CpuModel?, string, Kernel.Kvm.KvmProfile?) ReadProfile(SyntaxNode node, string path, string hostName)
        {
            var rel = b.Str(node, path);
            if (rel is null)
                return (null, "", null);
            var full = Path.IsPathRooted(rel) ? rel : Path.Combine(baseDir, rel);
            using var doc = Replay.HostProfileFile.TryParse(full, out var parseError);
            if (doc is null)
            {
                b.Error(node.Start, path, parseError!);
                return (null, "", null);
            }

            var (model, source, error) = HostProfile.CpuFrom(doc.RootElement, full, hostName);
            if (model is null)
            {
                b.Error(node.Start, path, error!);
                return (null, "", null);
            }

            // The memslot limits of the probed host, read as `s2lab memslots replay --host-profile` reads them.
            var limits = Replay.HostProfileFile.TryApply(doc.RootElement, full, out var limitsError);
            if (limits is null)
            {
                b.Error(node.Start, path, limitsError!);
                return (null, "", null);
            }

            return (model, source, limits);
        }

        private DesignSpec? ReadDesign(SyntaxNode? designNode, SyntaxNode? paramsNode, string path)
        {
            var design = b.Str(designNode, $"{path}.design");
            if (design is null)
                return null;
            if (!DesignCatalog.IsKnown(design))
            {
                b.Error(designNode!.Start, $"{path}.design", $"unknown design '{design}'; known designs: {string.Join(", ", DesignCatalog.Designs)}");
                return null;
            }

            var known = DesignCatalog.ParametersOf(design);
            var ps = new Dictionary<string, string>(StringComparer.Ordinal);
            var pf = b.Map(paramsNode, $"{path}.params");
            if (pf is not null)
            {
                pf.AllRead();
                foreach (var (key, value) in pf.Entries)
                {
                    var p = $"{path}.params.{key.Text}";
                    var v = b.Str(value, p);
                    if (!known.TryGetValue(key.Text, out var allowed))
                        b.Error(key.Start, p, known.Count == 0 ? $"design {design} takes no parameters" : $"unknown parameter; {design} takes: {string.Join(", ", known.Keys)}");
                    else if (v is not null && !allowed.Contains(v.ToLowerInvariant()))
                        b.Error(value.Start, p, $"'{v}' is not one of: {string.Join(", ", allowed)}");
                    else if (v is not null)
                        ps[key.Text] = v.ToLowerInvariant();
                }
            }

            // An unset parameter takes its default: "off" where the parameter is a switch, else its first value.
            foreach (var (k, values) in known)
                ps.TryAdd(k, values.Contains("off") ? "off" : values[0]);
            return new DesignSpec(design, ps);
        }

        private DeviceSpec? ReadDevice(string name, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var kindNode = f.Req("kind");
            var kind = b.Str(kindNode, $"{path}.kind");
            DeviceSpec? d = null;
            switch (kind)
            {
                case null:
                    break;
                case "nvgrace-gpu":
                    {
                        var model = b.Enum(f.Opt("model"), $"{path}.model", ModelWords) ?? NvgraceModel.Gh200;
                        var usemem = b.Size(f.Req("usemem"), $"{path}.usemem");
                        var resNode = f.Opt("resmem");
                        var resmem = b.Size(resNode, $"{path}.resmem") ?? (model == NvgraceModel.Gh200 ? 1UL << 30 : 0);
                        if (model != NvgraceModel.Gh200 && resmem != 0)
                            b.Error(resNode!.Start, $"{path}.resmem", $"{model.ToString().ToLowerInvariant()} has no resmem (MIG works with cached resmem on Grace Blackwell)");
                        if (model == NvgraceModel.Gh200 && resmem == 0)
                            b.Error(resNode?.Start ?? f.At, $"{path}.resmem", "gh200 always has a resmem region (1 GiB in real hardware)");
                        var bar0 = b.Size(f.Opt("bar0"), $"{path}.bar0") ?? 16UL << 20;
                        var mapping = b.Enum(f.Opt("usememMapping"), $"{path}.usememMapping", MappingWords) ?? NvGraceUsememMapping.Pfnmap;
                        CheckRegionSize(f, "usemem", usemem, path);
                        CheckRegionSize(f, "resmem", resmem == 0 ? null : resmem, path);
                        CheckRegionSize(f, "bar0", bar0, path);
                        if (usemem is not null)
                            d = new NvgraceGpuSpec(name, f.At, model, usemem.Value, resmem, bar0, mapping);
                        break;
                    }

                case "vfio-pci":
                    {
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
                        }

                        var indexes = bars.Select(x => x.Item1).Order().ToList();
                        if (indexes.Where((x, i) => x != i).Any())
                            b.Error(bf?.At ?? f.At, $"{path}.bars", "BARs are numbered from bar0 without gaps (bar0, bar1, ...)");
                        d = new VfioPciSpec(name, f.At, bars);
                        break;
                    }

                default:
                    b.Error(kindNode!.Start, $"{path}.kind", $"unknown device kind '{kind}'; known kinds: nvgrace-gpu, vfio-pci");
                    break;
            }

            f.Done();
            return d;
        }

        private void CheckRegionSize(Fields f, string key, ulong? size, string path)
        {
            if (size is not null && (size == 0 || size % PageSize != 0))
                b.Error(f.Opt(key)?.Start ?? f.At, $"{path}.{key}", "a device region size is a nonzero multiple of 4 KiB");
        }

        // ---- VMs ----

        private VmSpec? ReadVm(string name, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var hostNode = f.Req("host");
            var hostName = b.Name(hostNode, $"{path}.host");
            HostSpec? host = null;
            if (hostName is not null && !_hosts.TryGetValue(hostName, out host) && !_badHosts.Contains(hostName))
                b.Error(hostNode!.Start, $"{path}.host", UnknownHost(hostName));
            var ipaBits = b.Int(f.Opt("ipaBits"), $"{path}.ipaBits", 32, 52) ?? 40;
            var vcpus = b.Int(f.Opt("vcpus"), $"{path}.vcpus", 1, 512) ?? 1;
            var policy = b.Enum(f.Opt("policy"), $"{path}.policy", PolicyWords) ?? CapabilityPolicy.TrustKernel;
            var flag = b.Enum(f.Opt("memslotFlag"), $"{path}.memslotFlag", FlagWords) ?? CacheableFlagChoice.PreferCacheable;

            var regions = new List<VmRegionSpec>();
            var mem = b.List(f.Opt("memory"), $"{path}.memory");
            for (int i = 0; i < mem.Count; i++)
            {
                var p = $"{path}.memory[{i}]";
                var rf = b.Map(mem[i], p);
                if (rf is null)
                    continue;
                var rn = b.Name(rf.Req("name"), $"{p}.name");
                var gpa = b.Size(rf.Req("gpa"), $"{p}.gpa");
                var size = b.Size(rf.Req("size"), $"{p}.size");
                var backing = b.Enum(rf.Opt("backing"), $"{p}.backing", BackingWords) ?? RamBacking.Anon;
                var ro = b.Bool(rf.Opt("readonly"), $"{p}.readonly") ?? false;
                rf.Done();
                if (size == 0)
                    b.Error(rf.Opt("size")!.Start, $"{p}.size", "a RAM region cannot be empty");
                if (rn is not null && gpa is not null && size is not null && size != 0)
                    regions.Add(new VmRegionSpec(rn, gpa.Value, size.Value, ro, backing, null, null, rf.At));
                else if (rn is not null)
                    _badRegions.Add((name, rn));
            }

            var devs = b.List(f.Opt("devices"), $"{path}.devices");
            for (int i = 0; i < devs.Count; i++)
            {
                var p = $"{path}.devices[{i}]";
                var df = b.Map(devs[i], p);
                if (df is null)
                    continue;
                var devNode = df.Req("device");
                var devName = b.Name(devNode, $"{p}.device");
                var dev = devName is null || host is null ? null : host.Device(devName);
                if (devName is not null && host is not null && dev is null)
                    b.Error(devNode!.Start, $"{p}.device", $"host '{host.Name}' has no device '{devName}'; it has: {Known(host.Devices.Select(d => d.Name))}");
                var rmap = b.Map(df.Req("regions"), $"{p}.regions");
                if (rmap is not null)
                {
                    rmap.AllRead();
                    foreach (var (key, value) in rmap.Entries)
                    {
                        var rp = $"{p}.regions.{key.Text}";
                        var rf = b.Map(value, rp);
                        if (rf is null)
                            continue;
                        var gpa = b.Size(rf.Req("gpa"), $"{rp}.gpa");
                        var ro = b.Bool(rf.Opt("readonly"), $"{rp}.readonly") ?? false;
                        rf.Done();
                        if (devName is not null && (dev is null || gpa is null))
                            _badRegions.Add((name, $"{devName}.{key.Text}"));
                        if (dev is null)
                            continue;
                        var region = dev.Region(key.Text);
                        if (region is null)
                            b.Error(key.Start, rp, $"device '{dev.Name}' ({dev.Kind}) has no region '{key.Text}'; it has: {Known(dev.Regions.Select(r => r.Name))}");
                        else if (gpa is not null)
                            regions.Add(new VmRegionSpec($"{dev.Name}.{region.Name}", gpa.Value, region.Size, ro, RamBacking.Anon, dev.Name, region.Name, rf.At));
                    }
                }

                df.Done();
            }

            f.Done();
            if (mem.Count == 0 && devs.Count == 0)
                b.Error(f.At, $"{path}.memory", "a VM needs at least one memory or device region");
            CheckRegions(regions, path);
            return host is null ? null : new VmSpec(name, host.Name, ipaBits, vcpus, policy, flag, regions, f.At);
        }

        private void CheckRegions(List<VmRegionSpec> regions, string path)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var r in regions)
            {
                if (!names.Add(r.Name))
                    b.Error(r.At, $"{path}.{r.Name}", $"region name '{r.Name}' is used twice");
                if (r.Gpa + r.Size < r.Gpa)
                    b.Error(r.At, $"{path}.{r.Name}", "gpa + size overflows 64 bits");
            }

            var sorted = regions.OrderBy(r => r.Gpa).ToList();
            for (int i = 1; i < sorted.Count; i++)
            {
                var (a, c) = (sorted[i - 1], sorted[i]);
                if (c.Gpa < a.End)
                {
                    var later = a.At.Line > c.At.Line || (a.At.Line == c.At.Line && a.At.Column > c.At.Column) ? a : c;
                    var other = later == a ? c : a;
                    b.Error(later.At, $"{path}.{later.Name}",
                        $"guest-physical range [0x{later.Gpa:x}, 0x{later.End:x}) overlaps region '{other.Name}' [0x{other.Gpa:x}, 0x{other.End:x})");
                }
            }
        }

        private VariantSpec? ReadVariant(SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var name = b.Str(f.Req("name"), $"{path}.name");
            var designs = ReadNames(f.Opt("designs"), $"{path}.designs", checkDesigns: true);
            var mappings = new Dictionary<string, NvGraceUsememMapping>(StringComparer.Ordinal);
            var mf = b.Map(f.Req("usememMapping"), $"{path}.usememMapping");
            if (mf is not null)
            {
                mf.AllRead();
                foreach (var (key, value) in mf.Entries)
                {
                    var p = $"{path}.usememMapping.{key.Text}";
                    if (!_hosts.Values.Any(h => h.Device(key.Text) is NvgraceGpuSpec))
                        b.Error(key.Start, p, $"no host has an nvgrace-gpu device '{key.Text}'");
                    if (b.Enum(value, p, MappingWords) is { } m)
                        mappings[key.Text] = m;
                }
            }

            f.Done();
            return name is null ? null : new VariantSpec(name, designs, mappings);
        }

        private List<string> ReadNames(SyntaxNode? node, string path, bool checkDesigns)
        {
            var result = new List<string>();
            if (node is null)
                return result;
            var items = node is SequenceNode ? b.List(node, path) : [node];
            for (int i = 0; i < items.Count; i++)
            {
                var s = b.Str(items[i], node is SequenceNode ? $"{path}[{i}]" : path);
                if (s is null)
                    continue;
                if (checkDesigns && !DesignCatalog.IsKnown(s))
                    b.Error(items[i].Start, path, $"unknown design '{s}'; known designs: {string.Join(", ", DesignCatalog.Designs)}");
                result.Add(s);
            }

            return result;
        }

        // ---- steps ----

        private StepSpec? ReadStep(int index, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var id = b.Name(f.Opt("id"), $"{path}.id");
            var kinds = StepKinds.Where(f.Has).ToList();
            foreach (var k in StepKinds)
                f.Opt(k);
            if (kinds.Count != 1)
            {
                b.Error(f.At, path, kinds.Count == 0
                    ? $"a step needs one action: {string.Join(", ", StepKinds)}"
                    : $"a step has exactly one action, found: {string.Join(", ", kinds)}");
                f.Done();
                return null;
            }

            var kind = kinds[0];
            var body = f.Opt(kind)!;
            var p = $"{path}.{kind}";
            f.Done();
            return kind switch
            {
                "start" => ReadStart(index, id, body, p),
                "stop" => ReadVmOnly(body, p) is { } vm ? new StopStep(index, id, body.Start, vm.Name) : null,
                "access" => ReadAccess(index, id, body, p),
                "mprotect" => ReadRangeStep(index, id, body, p, isMprotect: true),
                "munmap" => ReadRangeStep(index, id, body, p, isMprotect: false),
                "migrate" => ReadMigrate(index, id, body, p),
                _ => ReadExpect(index, id, body, p),
            };
        }

        /// <summary>A step body that is just a VM name, or a mapping with a vm field.</summary>
        private VmSpec? ReadVmOnly(SyntaxNode body, string path)
        {
            if (body is ScalarNode)
                return ResolveVm(body, path);
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var vm = ResolveVm(f.Req("vm"), $"{path}.vm");
            f.Done();
            return vm;
        }

        private VmSpec? ResolveVm(SyntaxNode? node, string path)
        {
            var name = b.Name(node, path);
            if (name is null)
                return null;
            if (_vms.TryGetValue(name, out var vm))
                return vm;
            if (!_badVms.Contains(name))
                b.Error(node!.Start, path, $"unknown VM '{name}'; known VMs: {Known(_vms.Keys)}");
            return null;
        }

        private HostSpec? ResolveHost(SyntaxNode? node, string path)
        {
            var name = b.Name(node, path);
            if (name is null)
                return null;
            if (_hosts.TryGetValue(name, out var h))
                return h;
            if (!_badHosts.Contains(name))
                b.Error(node!.Start, path, UnknownHost(name));
            return null;
        }

        private StartStep? ReadStart(int index, string? id, SyntaxNode body, string path)
        {
            if (body is ScalarNode)
                return ResolveVm(body, path) is { } v ? new StartStep(index, id, body.Start, v.Name, v.Host) : null;
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var vm = ResolveVm(f.Req("vm"), $"{path}.vm");
            var hostNode = f.Opt("host");
            var host = hostNode is null ? null : ResolveHost(hostNode, $"{path}.host");
            f.Done();
            if (vm is null || (hostNode is not null && host is null))
                return null;
            if (host is not null)
                CheckDevicesOn(vm, host, hostNode!.Start, $"{path}.host");
            return new StartStep(index, id, body.Start, vm.Name, host?.Name ?? vm.Host);
        }

        /// <summary>Every device the VM uses must exist on the host with the same region sizes.</summary>
        private void CheckDevicesOn(VmSpec vm, HostSpec host, SourceMark at, string path)
        {
            foreach (var r in vm.Regions.Where(r => !r.IsRam))
            {
                var dev = host.Device(r.Device!);
                var reg = dev?.Region(r.DeviceRegion!);
                if (dev is null)
                    b.Error(at, path, $"host '{host.Name}' has no device '{r.Device}', which VM '{vm.Name}' uses");
                else if (reg is null || reg.Size != r.Size)
                    b.Error(at, path, $"device '{r.Device}' on host '{host.Name}' has no region '{r.DeviceRegion}' of size 0x{r.Size:x} as VM '{vm.Name}' uses");
            }
        }

        private (VmSpec, VmRegionSpec)? ReadRegionRef(Fields f, string path)
        {
            var vm = ResolveVm(f.Req("vm"), $"{path}.vm");
            var regionNode = f.Req("region");
            var region = b.Str(regionNode, $"{path}.region");
            if (vm is null || region is null)
                return null;
            var r = vm.Region(region);
            if (r is null && _badRegions.Contains((vm.Name, region)))
                return null;
            if (r is null)
            {
                b.Error(regionNode!.Start, $"{path}.region", $"VM '{vm.Name}' has no region '{region}'; it has: {Known(vm.Regions.Select(x => x.Name))}");
                return null;
            }

            return (vm, r);
        }

        private AccessStep? ReadAccess(int index, string? id, SyntaxNode body, string path)
        {
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var rr = ReadRegionRef(f, path);
            var offNode = f.Opt("offset");
            var offset = b.Size(offNode, $"{path}.offset") ?? 0;
            var mairNode = f.Req("mair");
            var mair = b.Size(mairNode, $"{path}.mair");
            if (mair > 0xFF)
                b.Error(mairNode!.Start, $"{path}.mair", "a MAIR attribute is one byte (0x00 .. 0xFF)");
            var typeNode = f.Req("type");
            var types = new List<AccessType>();
            if (typeNode is not null)
            {
                var items = typeNode is SequenceNode ? b.List(typeNode, $"{path}.type") : [typeNode];
                foreach (var item in items)
                {
                    if (b.Enum(item, $"{path}.type", AccessWords) is { } t)
                        types.Add(t);
                }

                if (items.Count == 0)
                    b.Error(typeNode.Start, $"{path}.type", "at least one access type (read, write, exec)");
            }

            var value = b.Size(f.Opt("value"), $"{path}.value") ?? 0x5EED_0000_0000_0000UL + (ulong)index;
            var vcpu = b.Int(f.Opt("vcpu"), $"{path}.vcpu", 0, 511) ?? 0;
            var writerNode = f.Opt("writer");
            var writer = writerNode is null ? null : b.Enum(writerNode, $"{path}.writer", WriterWords);
            var mmu = OnOff(f.Opt("mmu"), $"{path}.mmu");
            var caches = OnOff(f.Opt("caches"), $"{path}.caches");
            f.Done();
            if (rr is not { } x || mair is null || mair > 0xFF || types.Count == 0 || (writerNode is not null && writer is null))
                return null;
            // Compared without adding, so that a huge offset cannot wrap around into the region.
            if (offset % 8 != 0 || x.Item2.Size < 8 || offset > x.Item2.Size - 8)
            {
                b.Error(offNode?.Start ?? f.At, $"{path}.offset", $"offset 0x{offset:x} must be 8-byte aligned and inside region '{x.Item2.Name}' (size 0x{x.Item2.Size:x})");
                return null;
            }

            if (vcpu >= x.Item1.Vcpus)
            {
                b.Error(f.At, $"{path}.vcpu", $"VM '{x.Item1.Name}' has {x.Item1.Vcpus} vCPU(s)");
                return null;
            }

            return new AccessStep(index, id, body.Start, x.Item1.Name, x.Item2.Name, offset, (byte)mair.Value, types, value, vcpu)
            {
                Writer = writer,
                Mmu = mmu ?? true,
                Caches = caches ?? true,
            };
        }

        /// <summary>An optional "on"/"off" field (SCTLR_EL1 bits of an access).</summary>
        private bool? OnOff(SyntaxNode? node, string path) =>
            node is null ? null : b.Enum(node, path, OnOffWords) is { } v ? v : null;

        private StepSpec? ReadRangeStep(int index, string? id, SyntaxNode body, string path, bool isMprotect)
        {
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var rr = ReadRegionRef(f, path);
            var offset = b.Size(f.Opt("offset"), $"{path}.offset") ?? 0;
            var sizeNode = f.Opt("size");
            var size = b.Size(sizeNode, $"{path}.size");
            Prot prot = Prot.PROT_NONE;
            if (isMprotect)
            {
                var pn = f.Req("prot");
                var ps = b.Str(pn, $"{path}.prot");
                if (ps is not null && !TryParseProt(ps, out prot))
                    b.Error(pn!.Start, $"{path}.prot", $"'{ps}' is not a protection: none, r, rw, rx, rwx");
            }

            f.Done();
            if (rr is not { } x)
                return null;
            var len = size ?? (x.Item2.Size - Math.Min(offset, x.Item2.Size));
            if (offset % PageSize != 0 || len % PageSize != 0 || len == 0 || offset > x.Item2.Size || len > x.Item2.Size - offset)
            {
                b.Error(sizeNode?.Start ?? f.At, $"{path}.size", $"[offset, offset + size) must be whole pages inside region '{x.Item2.Name}' (size 0x{x.Item2.Size:x})");
                return null;
            }

            return isMprotect
                ? new MprotectStep(index, id, body.Start, x.Item1.Name, x.Item2.Name, offset, len, prot)
                : new MunmapStep(index, id, body.Start, x.Item1.Name, x.Item2.Name, offset, len);
        }

        private static bool TryParseProt(string s, out Prot prot)
        {
            prot = Prot.PROT_NONE;
            if (s == "none")
                return true;
            foreach (var c in s)
            {
                var bit = c switch { 'r' => Prot.PROT_READ, 'w' => Prot.PROT_WRITE, 'x' => Prot.PROT_EXEC, _ => Prot.PROT_NONE };
                if (bit == Prot.PROT_NONE || (prot & bit) != 0)
                    return false;
                prot |= bit;
            }

            return prot != Prot.PROT_NONE;
        }

        private MigrateStep? ReadMigrate(int index, string? id, SyntaxNode body, string path)
        {
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var vm = ResolveVm(f.Req("vm"), $"{path}.vm");
            var toNode = f.Req("to");
            var to = toNode is null ? null : ResolveHost(toNode, $"{path}.to");
            var policy = b.Enum(f.Opt("policy"), $"{path}.policy", PolicyWords);
            var rounds = b.Int(f.Opt("maxRounds"), $"{path}.maxRounds", 1, 1000) ?? 8;
            var threshold = b.Int(f.Opt("stopCopyPages"), $"{path}.stopCopyPages", 0, int.MaxValue) ?? 4;
            var dirty = new List<DirtySpec>();
            var items = b.List(f.Opt("dirty"), $"{path}.dirty");
            for (int i = 0; i < items.Count; i++)
            {
                var p = $"{path}.dirty[{i}]";
                var df = b.Map(items[i], p);
                if (df is null)
                    continue;
                var regionNode = df.Req("region");
                var region = b.Str(regionNode, $"{p}.region");
                var offset = b.Size(df.Opt("offset"), $"{p}.offset") ?? 0;
                var pages = b.Int(df.Opt("pages"), $"{p}.pages", 1, 1 << 20) ?? 1;
                var dr = b.Int(df.Opt("rounds"), $"{p}.rounds", 1, 1000) ?? 1;
                df.Done();
                var r = vm is null || region is null ? null : vm.Region(region);
                if (vm is not null && region is not null && r is null)
                    b.Error(regionNode!.Start, $"{p}.region", $"VM '{vm.Name}' has no region '{region}'");
                else if (r is not null && !r.IsRam)
                    b.Error(regionNode!.Start, $"{p}.region", "only RAM is dirtied during pre-copy (device memory cannot be dirty-logged, rule 6)");
                else if (r is not null && (offset % PageSize != 0 || offset > r.Size || (ulong)pages > (r.Size - offset) / PageSize))
                    b.Error(items[i].Start, p, $"{pages} page(s) from offset 0x{offset:x} do not fit in region '{r.Name}'");
                else if (r is not null)
                    dirty.Add(new DirtySpec(r.Name, offset, pages, dr));
            }

            f.Done();
            if (vm is null || to is null)
                return null;
            CheckDevicesOn(vm, to, toNode!.Start, $"{path}.to");
            return new MigrateStep(index, id, body.Start, vm.Name, to.Name, policy, dirty, rounds, threshold);
        }

        private ExpectStep? ReadExpect(int index, string? id, SyntaxNode body, string path)
        {
            var f = b.Map(body, path);
            if (f is null)
                return null;
            var stepNode = f.Opt("step");
            var stepId = b.Name(stepNode, $"{path}.step");
            StepSpec? target = null;
            if (stepId is not null && !_stepIds.TryGetValue(stepId, out target) && !_badStepIds.Contains(stepId))
                b.Error(stepNode!.Start, $"{path}.step", $"no earlier step has id '{stepId}'; known ids: {Known(_stepIds.Keys)}");
            var designs = ReadNames(f.Opt("designs"), $"{path}.designs", checkDesigns: true);
            var variants = ReadNames(f.Opt("variants"), $"{path}.variants", checkDesigns: false);
            var allowed = ExpectFields.For(target?.Kind);
            var checks = new List<Expectation>();
            foreach (var (key, value) in f.Entries)
            {
                if (key.Text is "step" or "designs" or "variants")
                    continue;
                f.Opt(key.Text);
                var p = $"{path}.{key.Text}";
                if (stepId is not null && target is null)
                    continue;
                if (!allowed.Contains(key.Text))
                {
                    b.Error(key.Start, p, target is null
                        ? "without 'step', an expect checks only: scorecard"
                        : $"cannot be checked on a {target.Kind} step; fields for {target.Kind}: {string.Join(", ", allowed)}");
                    continue;
                }

                ReadChecks(key.Text, value, p, checks);
            }

            f.Done();
            if (checks.Count == 0 && b.Errors.Count == 0)
                b.Error(f.At, path, "an expect step needs at least one field to check");
            return new ExpectStep(index, id, body.Start, target?.Id, designs, variants, checks);
        }

        private void ReadChecks(string field, SyntaxNode value, string path, List<Expectation> checks)
        {
            // Nested maps: memslots.<region>: ok|ERRNO, scorecard.<property>: bool.
            if (field is "memslots" or "scorecard")
            {
                var mf = b.Map(value, path);
                if (mf is null)
                    return;
                mf.AllRead();
                foreach (var (k, v) in mf.Entries)
                {
                    var p = $"{path}.{k.Text}";
                    if (field == "scorecard" && !ExpectFields.ScorecardProperties.Contains(k.Text))
                    {
                        b.Error(k.Start, p, $"unknown property; properties: {string.Join(", ", ExpectFields.ScorecardProperties)}");
                        continue;
                    }

                    if (field == "scorecard" ? b.Bool(v, p) is { } bv : b.Str(v, p) is not null)
                    {
                        var text = field == "scorecard" ? ((b.Bool(v, p) ?? false) ? "true" : "false") : b.Str(v, p)!;
                        if (field == "memslots" && !IsErrnoOrOk(text, allowSkipped: true))
                            b.Error(v.Start, p, $"'{text}' is not ok, skipped or an errno name (EINVAL, EFAULT, ...)");
                        else
                            checks.Add(new Expectation($"{field}.{k.Text}", text, v.Start));
                    }
                }

                return;
            }

            string? expected = value switch
            {
                SequenceNode s => string.Join(",", s.Items.Select((x, i) => b.Str(x, $"{path}[{i}]") ?? "")),
                _ => b.Str(value, path),
            };
            if (expected is null)
                return;
            string? problem = field switch
            {
                "outcome" when !ExpectFields.StartOutcomes.Concat(ExpectFields.MigrationOutcomes).Contains(expected) =>
                    $"'{expected}' is not an outcome: {string.Join(", ", ExpectFields.StartOutcomes.Concat(ExpectFields.MigrationOutcomes).Distinct())}",
                "errno" or "result" when !IsErrnoOrOk(expected, allowSkipped: false) => $"'{expected}' is not ok or an errno name",
                "read" or "write" or "exec" when !ExpectFields.AccessOutcomes.Contains(expected.ToLowerInvariant()) =>
                    $"'{expected}' is not an access outcome: {string.Join(", ", ExpectFields.AccessOutcomes)}",
                "stage2" when !ExpectFields.Stage2Types.Contains(expected.ToLowerInvariant()) =>
                    $"'{expected}' is not a stage-2 type: {string.Join(", ", ExpectFields.Stage2Types)}",
                "cmo" when expected is not ("none" or "possible" or "impossible") => $"'{expected}' is not one of: none, possible, impossible",
                "dataIntact" when expected is not ("true" or "false") => "expected true or false",
                "cap243" when expected is not ("0" or "1" or "EINVAL") => "expected 0, 1 or EINVAL",
                _ => null,
            };
            if (problem is not null)
                b.Error(value.Start, path, problem);
            else
                checks.Add(new Expectation(field, expected, value.Start));
        }

        private static bool IsErrnoOrOk(string s, bool allowSkipped) =>
            s is "ok" or "0" || (allowSkipped && s is "skipped" or "refused") ||
            (System.Enum.TryParse<Kernel.Kvm.Uapi.Errno>(s, ignoreCase: false, out var e) && e != Kernel.Kvm.Uapi.Errno.None && s.StartsWith('E'));

        private string UnknownHost(string name) => $"unknown host '{name}'; known hosts: {Known(_hosts.Keys)}";

        private static string Known(IEnumerable<string> names)
        {
            var list = names.ToList();
            return list.Count == 0 ? "(none)" : string.Join(", ", list);
        }
    }
}
