using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Scenarios.Kinds;
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
    public static Scenario Parse(string text, string file, string? baseDirectory = null) =>
        Parse(text, file, baseDirectory, ScenarioKinds.Default);

    /// <summary>Parses scenario text with the step, device and backing kinds of <paramref name="kinds"/>.</summary>
    internal static Scenario Parse(string text, string file, string? baseDirectory, ScenarioKinds kinds)
    {
        var root = file.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? SyntaxReaders.ParseJson(text, file)
            : SyntaxReaders.ParseYaml(text, file);
        var b = new Binder(file);
        var scenario = new Reader(b, baseDirectory ?? Directory.GetCurrentDirectory(), kinds).Read(root);
        if (b.Errors.Count > 0 || scenario is null)
        {
            var errors = b.Errors.Count > 0 ? b.Errors : [new ScenarioError(file, root.Start, "", "invalid scenario")];
            throw new ScenarioException(errors.OrderBy(e => e.At.Line).ThenBy(e => e.At.Column).ToList());
        }

        return scenario;
    }

    internal static readonly Dictionary<string, CapabilityPolicy> PolicyWords = new()
    {
        ["trust-kernel"] = CapabilityPolicy.TrustKernel,
        ["check-capability"] = CapabilityPolicy.CheckCapability,
    };

    private static readonly Dictionary<string, CacheableFlagChoice> FlagWords = new()
    {
        ["prefer-cacheable"] = CacheableFlagChoice.PreferCacheable,
        ["prefer-migratable"] = CacheableFlagChoice.PreferMigratable,
    };

    internal static readonly Dictionary<string, NvGraceUsememMapping> MappingWords = new()
    {
        ["pfnmap"] = NvGraceUsememMapping.Pfnmap,
        ["mixedmap"] = NvGraceUsememMapping.Mixedmap,
    };

    /// <summary>A device region size is a nonzero multiple of 4 KiB.</summary>
    internal static void CheckRegionSize(Binder b, Fields f, string key, ulong? size, string path)
    {
        if (size is not null && (size == 0 || size % PageSize != 0))
            b.Error(f.Opt(key)?.Start ?? f.At, $"{path}.{key}", "a device region size is a nonzero multiple of 4 KiB");
    }

    internal static readonly Dictionary<string, HostWriter> WriterWords = new()
    {
        ["vmm"] = HostWriter.Vmm,
        ["device"] = HostWriter.Device,
        ["previous-vm"] = HostWriter.PreviousVm,
    };

    internal static readonly Dictionary<string, bool> OnOffWords = new()
    {
        ["on"] = true,
        ["off"] = false,
    };

    /// <summary>Reads one document; step, device and backing kinds read their own parts through its helpers.</summary>
    internal sealed class Reader(Binder b, string baseDir, ScenarioKinds kinds)
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
            return new Scenario(name, description, b.File, _hosts.Values.ToList(), _vms.Values.ToList(), steps, variants) { Kinds = kinds };
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
            return cpu is null || design is not { } hostDesign ? null : new HostSpec(name, cpu, cpuSource, hostDesign, devices, f.At) { KvmProfile = kvmProfile };
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

        /// <summary>The host's design: its name, and its one argument from <c>params</c> (<see cref="DesignCatalog.ParameterName"/>) or at its default.</summary>
        private DesignRef? ReadDesign(SyntaxNode? designNode, SyntaxNode? paramsNode, string path)
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
            return ps.TryGetValue(DesignCatalog.ParameterName, out var arg) ? new DesignRef(design, arg) : DesignCatalog.DefaultRef(design);
        }

        private DeviceSpec? ReadDevice(string name, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var kindNode = f.Req("kind");
            var kind = b.Str(kindNode, $"{path}.kind");
            DeviceSpec? d = null;
            if (kind is not null && kinds.Device(kind) is { } dk)
                d = dk.Read(new DeviceReader(b, name, f, path));
            else if (kind is not null)
                b.Error(kindNode!.Start, $"{path}.kind", $"unknown device kind '{kind}'; known kinds: {string.Join(", ", kinds.Devices.Select(k => k.Name))}");

            f.Done();
            return d;
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
            var mte = b.Bool(f.Opt("mte"), $"{path}.mte") ?? false;
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
                var backingNode = rf.Opt("backing");
                var backingName = b.Str(backingNode, $"{p}.backing") ?? "anon";
                var backingKind = kinds.RamBackings.FirstOrDefault(k => k.Name == backingName);
                if (backingKind is null && backingNode is not null)
                    b.Error(backingNode.Start, $"{p}.backing", $"'{backingName}' is not one of: {string.Join(", ", kinds.RamBackings.Select(k => k.Name))}");
                var backing = backingKind?.Read(new BackingReader(b, rf, p) { RegionSize = size });
                var ro = b.Bool(rf.Opt("readonly"), $"{p}.readonly") ?? false;
                var logDirty = b.Bool(rf.Opt("logDirty"), $"{p}.logDirty") ?? false;
                rf.Done();
                if (size == 0)
                    b.Error(rf.Opt("size")!.Start, $"{p}.size", "a RAM region cannot be empty");
                if (rn is not null && gpa is not null && size is not null && size != 0 && backing is not null)
                    regions.Add(new VmRegionSpec(rn, gpa.Value, size.Value, ro, null, null, rf.At) { BackingSpec = backing, LogDirty = logDirty });
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
                        var logDirty = b.Bool(rf.Opt("logDirty"), $"{rp}.logDirty") ?? false;
                        rf.Done();
                        if (devName is not null && (dev is null || gpa is null))
                            _badRegions.Add((name, $"{devName}.{key.Text}"));
                        if (dev is null)
                            continue;
                        var region = dev.Region(key.Text);
                        if (region is null)
                            b.Error(key.Start, rp, $"device '{dev.Name}' ({dev.Kind}) has no region '{key.Text}'; it has: {Known(dev.Regions.Select(r => r.Name))}");
                        else if (gpa is not null)
                            regions.Add(new VmRegionSpec($"{dev.Name}.{region.Name}", gpa.Value, region.Size, ro, dev.Name, region.Name, rf.At) { BackingSpec = RegionBackingSpec.Device, LogDirty = logDirty });
                    }
                }

                df.Done();
            }

            f.Done();
            if (mem.Count == 0 && devs.Count == 0)
                b.Error(f.At, $"{path}.memory", "a VM needs at least one memory or device region");
            CheckRegions(regions, path);
            return host is null ? null : new VmSpec(name, host.Name, ipaBits, vcpus, policy, flag, regions, f.At) { Mte = mte };
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

        public List<string> ReadNames(SyntaxNode? node, string path, bool checkDesigns)
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

        /// <summary>The registry this document is read with.</summary>
        public ScenarioKinds Kinds => kinds;

        public VmSpec Vm(string name) => _vms[name];

        public HostSpec Host(string name) => _hosts[name];

        /// <summary>An earlier step with this id.</summary>
        public bool TryStep(string id, out StepSpec? step) => _stepIds.TryGetValue(id, out step);

        /// <summary>A step id whose step had errors (references to it report nothing more).</summary>
        public bool IsBadStepId(string id) => _badStepIds.Contains(id);

        public string KnownStepIds => Known(_stepIds.Keys);

        private StepSpec? ReadStep(int index, SyntaxNode node, string path)
        {
            var f = b.Map(node, path);
            if (f is null)
                return null;
            var id = b.Name(f.Opt("id"), $"{path}.id");
            var names = kinds.Steps.Select(k => k.Name).ToList();
            var found = names.Where(f.Has).ToList();
            foreach (var k in names)
                f.Opt(k);
            if (found.Count != 1)
            {
                b.Error(f.At, path, found.Count == 0
                    ? $"a step needs one action: {string.Join(", ", names)}"
                    : $"a step has exactly one action, found: {string.Join(", ", found)}");
                f.Done();
                return null;
            }

            var kind = kinds.Step(found[0])!;
            var body = f.Opt(kind.Name)!;
            f.Done();
            var reader = new StepReader(this, b, index, id, body, $"{path}.{kind.Name}");
            var step = kind.Read(reader);
            return step is not null && kind.Check(step, reader) ? step : null;
        }

        /// <summary>A step body that is just a VM name, or a mapping with a vm field.</summary>
        public VmSpec? ReadVmOnly(SyntaxNode body, string path)
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

        public VmSpec? ResolveVm(SyntaxNode? node, string path)
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

        public HostSpec? ResolveHost(SyntaxNode? node, string path)
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

        /// <summary>Every device the VM uses must exist on the host with the same region sizes.</summary>
        public void CheckDevicesOn(VmSpec vm, HostSpec host, SourceMark at, string path)
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

        public (VmSpec, VmRegionSpec)? ReadRegionRef(Fields f, string path)
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

        private string UnknownHost(string name) => $"unknown host '{name}'; known hosts: {Known(_hosts.Keys)}";

        private static string Known(IEnumerable<string> names)
        {
            var list = names.ToList();
            return list.Count == 0 ? "(none)" : string.Join(", ", list);
        }
    }
}
