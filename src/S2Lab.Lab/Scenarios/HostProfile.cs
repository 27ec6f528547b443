using System.Text.Json;
using S2Lab.Arch.Cpu;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// A scenario host from a host profile (<c>s2lab probe</c>, format <c>s2lab-host-profile/1</c>, documented in
/// docs/host-profile.md). The profile records what KVM answered, not the ID registers, so the CPU is rebuilt from
/// those answers: <c>derived.supports_cacheable_pfnmap</c> (capability 243 on a VM fd, rules 1-2) and
/// <c>derived.max_ipa_bits</c> (capability 165).
/// </summary>
public static class HostProfile
{
    /// <summary>The CPU model of a parsed profile (<see cref="HostProfileFile.TryParse"/>) and where its values came from, or null and an error message.</summary>
    public static (CpuModel? Model, string Source, string? Error) CpuFrom(JsonElement root, string path, string hostName)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var f) || f.ValueKind != JsonValueKind.String || f.GetString() != HostProfileFile.Format)
            return (null, "", $"host profile '{path}': format is not \"{HostProfileFile.Format}\"");
        var arch = Get(root, "host", "arch") is { ValueKind: JsonValueKind.String } a ? a.GetString() : null;
        if (arch != "arm64")
            return (null, "", $"host profile '{path}': host.arch is '{arch ?? "null"}'; scenario hosts are arm64 (rules 1-18 are arm64 KVM)");

        // The kernel must know capability 243, or a 0 says nothing about the CPU (before 6.17 it is an unknown cap).
        bool known = false;
        if (root.TryGetProperty("caps", out var caps) && caps.ValueKind == JsonValueKind.Array)
        {
            foreach (var c in caps.EnumerateArray())
            {
                if (c.TryGetProperty("number", out var n) && n.TryGetInt32(out var num) && num == 243)
                {
                    known = (c.TryGetProperty("system", out var sys) && sys.ValueKind == JsonValueKind.Object && sys.TryGetProperty("errno", out _))
                            || (c.TryGetProperty("vm", out var vm) && vm.ValueKind == JsonValueKind.Object && vm.TryGetProperty("value", out var v) && v.TryGetInt64(out var vv) && vv != 0);
                }
            }
        }

        var supports = Get(root, "derived", "supports_cacheable_pfnmap");
        if (supports is not { ValueKind: JsonValueKind.True or JsonValueKind.False })
            return (null, "", $"host profile '{path}': derived.supports_cacheable_pfnmap is missing or null");
        if (!known)
        {
            return (null, "", $"host profile '{path}': the probed kernel does not know capability 243 (it answers like an unknown capability), " +
                              "so the profile cannot tell whether the host has FWB and DIC; give the host a cpu instead");
        }

        int paBits = Get(root, "derived", "max_ipa_bits") is { ValueKind: JsonValueKind.Number } ipa && ipa.TryGetInt32(out var bits) && IdAa64Mmfr0El1.EncodePaBits(bits) is not null
            ? bits
            : 48;
        bool ok = supports.Value.GetBoolean();
        // Capability 243 is FWB && DIC (rule 1). When it is 0 the profile cannot say which is missing: the model
        // takes FWB absent and DIC present, as on Neoverse-N1 (the usual case).
        const ulong ctrBase = (1UL << 31) | (4UL << 16) | 4UL | (1UL << CtrEl0.IdcBit) | (1UL << CtrEl0.DicBit);
        var model = CpuModel.FromRegisters(hostName, (ulong)IdAa64Mmfr0El1.EncodePaBits(paBits)!.Value,
            ok ? 1UL << IdAa64Mmfr2El1.FwbShift : 0, ctrBase, $"host profile {Path.GetFileName(path)}");
        var source = ok
            ? $"profile {Path.GetFileName(path)}: capability 243 = 1 (FWB and DIC), {paBits}-bit IPA"
            : $"profile {Path.GetFileName(path)}: capability 243 = 0; FWB taken as absent, DIC present (the profile does not say which is missing), {paBits}-bit IPA";
        return (model, source, null);
    }

    private static JsonElement? Get(JsonElement root, string a, string b) =>
        root.TryGetProperty(a, out var x) && x.ValueKind == JsonValueKind.Object && x.TryGetProperty(b, out var y) ? y : null;
}
