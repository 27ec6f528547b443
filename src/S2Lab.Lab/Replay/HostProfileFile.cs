using System.Text.Json;
using S2Lab.Kernel.Kvm;

namespace S2Lab.Lab.Replay;

/// <summary>
/// Reads a host profile written by <c>s2lab probe</c> (format s2lab-host-profile/1, docs/host-profile.md) and applies
/// the memslot limits a real host reported to a model <see cref="KvmProfile"/>: user slots, address spaces,
/// guest_memfd support and (x86) the GPA limit.
/// </summary>
public static class HostProfileFile
{
    public const string Format = "s2lab-host-profile/1";

    /// <summary>The deepest nesting of objects and arrays accepted in a profile (s2lab probe writes 3).</summary>
    public const int MaxDepth = Scenarios.SyntaxReaders.MaxDepth;

    /// <summary>The model profile for the host described by <paramref name="path"/>; null with an error naming the file and field.</summary>
    public static KvmProfile? TryLoad(string path, out string? error)
    {
        using var doc = TryParse(path, out error);
        return doc is null ? null : TryApply(doc.RootElement, path, out error);
    }

    /// <summary>
    /// Reads and parses a profile file once (comments are allowed, as in hand-edited files); null with an error naming
    /// the file. The caller disposes the document. Both readers of a profile, the memslot limits here and the scenario
    /// host's CPU (<see cref="Scenarios.HostProfile"/>), work on this one document.
    /// </summary>
    public static JsonDocument? TryParse(string path, out string? error)
    {
        var text = InputFiles.TryReadText(path, InputFiles.MaxHostProfileBytes, out error);
        if (text is null)
        {
            error = $"{path}: {error}";
            return null;
        }
        // The scenario reader's depth and length limits first: hostile nesting gets file, line, column and field.
        if (Scenarios.SyntaxReaders.CheckJsonLimits(text, path) is { } limit)
        {
            error = limit.ToString();
            return null;
        }
        try
        {
            error = null;
            return JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            error = JsonErrors.Format(path, e);
            return null;
        }
    }

    /// <summary>Applies a parsed profile (see <see cref="TryLoad"/>).</summary>
    public static KvmProfile? TryApply(JsonElement root, string name, out string? error)
    {
        string? bad = null;
        JsonElement? At(params string[] path)
        {
            var el = root;
            foreach (var p in path)
            {
                if (el.ValueKind != JsonValueKind.Object || !el.TryGetProperty(p, out el))
                    return null;
            }
            return el;
        }
        long? Number(params string[] path)
        {
            var el = At(path);
            if (el is null || el.Value.ValueKind == JsonValueKind.Null)
                return null;
            if (el.Value.ValueKind == JsonValueKind.Number && el.Value.TryGetInt64(out var v))
                return v;
            bad ??= $"field '{string.Join('.', path)}': must be an integer";
            return null;
        }

        if (At("format") is not { ValueKind: JsonValueKind.String } f || f.GetString() != Format)
        {
            error = $"{name}: field 'format': must be \"{Format}\" (a file written by s2lab probe)";
            return null;
        }
        var arch = At("host", "arch") is { ValueKind: JsonValueKind.String } a ? a.GetString() : null;
        var profile = arch is null ? null : KvmProfile.Find(arch);
        if (profile is null)
        {
            error = $"{name}: field 'host.arch': \"{arch}\" is not a profile S2Lab models (arm64, x86_64)";
            return null;
        }
        var slots = Number("derived", "user_memslots");
        var asIds = Number("derived", "address_spaces");
        var gpaBits = Number("memslots", "max_gpa_bits");
        var gmem = At("derived", "guest_memfd") is { } g && g.ValueKind is JsonValueKind.True or JsonValueKind.False ? g.GetBoolean() : (bool?)null;
        if (bad is not null)
        {
            error = $"{name}: {bad}";
            return null;
        }
        if (slots is { } s && (s < 1 || s > profile.MemSlotsNum))
        {
            error = $"{name}: field 'derived.user_memslots': {s} is outside 1..{profile.MemSlotsNum}";
            return null;
        }
        if (asIds is { } n && (n < 1 || n > 16))
        {
            error = $"{name}: field 'derived.address_spaces': {n} is outside 1..16";
            return null;
        }
        if (gpaBits is { } b && (b < 13 || b > 64))
        {
            error = $"{name}: field 'memslots.max_gpa_bits': {b} is outside 13..64";
            return null;
        }
        error = null;
        return profile with
        {
            UserMemSlots = (int?)slots ?? profile.UserMemSlots,
            AddressSpaces = (int?)asIds ?? profile.AddressSpaces,
            GuestMemfd = gmem ?? profile.GuestMemfd,
            // The x86 arch hook's limit; on arm64 the limit is the VM's IPA size, which the CPU model decides.
            X86MaxGpaBits = profile.Arch == Kernel.Kvm.Uapi.KvmArch.X86_64 && gpaBits is { } x ? (int)x : profile.X86MaxGpaBits,
        };
    }
}
