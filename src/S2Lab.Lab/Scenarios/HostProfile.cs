using System.Globalization;
using System.Text.Json;
using S2Lab.Arch.Cpu;

namespace S2Lab.Lab.Scenarios;

/// <summary>
/// Reads the CPU part of a host profile JSON (written by <c>s2lab probe</c>): the raw ID register values.
/// Values may be JSON numbers or strings ("0x..." hex or decimal).
/// </summary>
public static class HostProfile
{
    /// <summary>The CPU model of a profile, or null and an error message.</summary>
    public static (CpuModel? Model, string? Error) TryLoad(string path, string hostName)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return (null, $"cannot read host profile '{path}': {e.Message}");
        }

        using (doc)
        {
            var root = doc.RootElement;
            var regs = root.TryGetProperty("idRegisters", out var r) ? r : root;
            ulong? Get(string name) =>
                regs.ValueKind == JsonValueKind.Object && regs.TryGetProperty(name, out var v) ? Parse(v) : null;
            var mmfr0 = Get("idAa64Mmfr0El1");
            var mmfr2 = Get("idAa64Mmfr2El1");
            var ctr = Get("ctrEl0");
            if (mmfr0 is null || mmfr2 is null || ctr is null)
                return (null, $"host profile '{path}' lacks idAa64Mmfr0El1, idAa64Mmfr2El1 or ctrEl0");
            var name = root.TryGetProperty("hostname", out var hn) && hn.ValueKind == JsonValueKind.String ? hn.GetString()! : hostName;
            return (CpuModel.FromRegisters(name, mmfr0.Value, mmfr2.Value, ctr.Value, $"host profile {Path.GetFileName(path)}"), null);
        }
    }

    private static ulong? Parse(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out var n))
            return n;
        if (v.ValueKind != JsonValueKind.String)
            return null;
        var s = v.GetString()!;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h) ? h : null;
        return ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : null;
    }
}
