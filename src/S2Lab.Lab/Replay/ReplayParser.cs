using System.Globalization;
using System.Text.Json;

namespace S2Lab.Lab.Replay;

/// <summary>
/// Reads memslot replay files: JSON lines, one operation per line. Blank lines and lines starting with '#' are
/// skipped. Numbers are JSON numbers or strings (decimal or 0x hex), unsigned 64-bit; slot and flags are 32-bit.
/// Parsing is all or nothing: the first malformed line is reported and nothing is executed.
/// </summary>
public static class ReplayParser
{
    /// <summary>The longest line accepted: an operation takes about 150 characters.</summary>
    public const int MaxLineLength = 4096;

    private static readonly HashSet<string> CreateVmFields = ["op", "type", "expect"];
    private static readonly HashSet<string> CreateGmemFields = ["op", "size", "flags", "expect"];
    private static readonly HashSet<string> SetFields = ["op", "v", "slot", "flags", "gpa", "size", "uaddr", "gmem", "gmem_offset", "expect"];
    private static readonly HashSet<string> CapFields = ["op", "fd", "cap", "expect", "value"];
    private static readonly HashSet<string> MmapFields = ["op", "kind", "uaddr", "size", "offset", "expect"];
    private static readonly HashSet<string> MunmapFields = ["op", "uaddr", "size", "expect"];
    private static readonly HashSet<string> VcpuFields = ["op", "slot", "gpa", "uaddr", "expect"];
    private static readonly HashSet<string> AccessFields = ["op", "kind", "gpa", "expect", "exit", "leaf"];
    private static readonly HashSet<string> EnableCapFields = ["op", "cap", "expect"];
    private const string OpNames = "one of create_vm, create_gmem, set, cap, enable_cap, mmap, munmap, vcpu, access";

    /// <summary>Parses a file from disk; an unreadable file is an error on line 0.</summary>
    public static (ReplayFile? File, ReplayError? Error) ParseFile(string path)
    {
        try
        {
            using var reader = new StreamReader(path);
            return Parse(reader, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, new ReplayError(path, 0, null, $"cannot read the file: {e.Message}"));
        }
    }

    /// <summary>Parses replay text; <paramref name="name"/> names the file in errors.</summary>
    public static (ReplayFile? File, ReplayError? Error) Parse(TextReader reader, string name)
    {
        var ops = new List<ReplayOp>();
        var vms = 0;
        var gmems = 0;
        var lineNo = 0;
        var lines = new BoundedLineReader(reader, MaxLineLength);
        while (true)
        {
            var line = lines.ReadLine(out var tooLong);
            if (tooLong)
                return (null, new ReplayError(name, lineNo + 1, null, $"the line is longer than {MaxLineLength} characters (one operation is a short JSON object)"));
            if (line is null)
                break;
            lineNo++;
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed[0] == '#')
                continue;
            var (op, error) = ParseLine(trimmed, name, lineNo, vms, gmems);
            if (error is not null)
                return (null, error);
            switch (op)
            {
                case CreateVmOp:
                    vms++;
                    break;
                case CreateGmemOp:
                    gmems++;
                    break;
            }
            ops.Add(op!);
        }
        return (new ReplayFile(name, ops), null);
    }

    private static (ReplayOp? Op, ReplayError? Error) ParseLine(string text, string file, int line, int vmsBefore, int gmemsBefore)
    {
        ReplayError Err(string? field, string message) => new(file, line, field, message);

        // Nesting and length limits first (an operation is one flat object): hostile nesting names its field.
        if (Scenarios.SyntaxReaders.CheckJsonLimits(text, file) is { } limit)
            return (null, Err(limit.Field.Length > 0 ? limit.Field : null, $"column {limit.At.Column}: {limit.Message}"));
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            var field = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;
            return (null, Err(field, $"not valid JSON: {JsonErrors.FirstSentence(e.Message)}"));
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return (null, Err(null, "each line must be a JSON object"));
            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!fields.TryAdd(p.Name, p.Value))
                    return (null, Err(p.Name, "given twice"));
            }
            if (!fields.TryGetValue("op", out var opEl))
                return (null, Err("op", $"missing ({OpNames})"));
            if (opEl.ValueKind != JsonValueKind.String)
                return (null, Err("op", "must be a string"));
            var opName = opEl.GetString()!;
            var allowed = opName switch
            {
                "create_vm" => CreateVmFields,
                "create_gmem" => CreateGmemFields,
                "set" => SetFields,
                "cap" => CapFields,
                "enable_cap" => EnableCapFields,
                "mmap" => MmapFields,
                "munmap" => MunmapFields,
                "vcpu" => VcpuFields,
                "access" => AccessFields,
                _ => null,
            };
            if (allowed is null)
                return (null, Err("op", $"unknown operation '{opName}' ({OpNames})"));
            foreach (var f in fields.Keys)
            {
                if (!allowed.Contains(f))
                    return (null, Err(f, $"not a field of '{opName}' (allowed: {string.Join(", ", allowed)})"));
            }
            var needsVm = opName is not ("create_vm" or "mmap" or "munmap") &&
                          !(opName == "cap" && fields.TryGetValue("fd", out var fdEl) && fdEl.ValueKind == JsonValueKind.String && fdEl.GetString() == "sys");
            if (needsVm && vmsBefore == 0)
                return (null, Err("op", $"'{opName}' before any create_vm: there is no VM to act on"));

            Kernel.Kvm.Uapi.Errno? expected = null;
            if (fields.TryGetValue("expect", out var expEl))
            {
                if (expEl.ValueKind != JsonValueKind.String || !ErrnoText.TryParse(expEl.GetString()!, out var e))
                    return (null, Err("expect", "must be \"0\" or an errno name such as \"EINVAL\""));
                expected = e;
            }

            string? bad = null;
            ulong U64(string field, bool required, ulong max = ulong.MaxValue, ulong fallback = 0)
            {
                if (bad is not null)
                    return 0;
                if (!fields.TryGetValue(field, out var el))
                {
                    if (required)
                        bad = $"{field}\u0000missing";
                    return fallback;
                }
                if (!TryReadUnsigned(el, out var v, out var why))
                {
                    bad = $"{field}\u0000{why}";
                    return 0;
                }
                if (v > max)
                {
                    bad = $"{field}\u0000{v} is out of range (at most 0x{max:x})";
                    return 0;
                }
                return v;
            }

            string? Text(string field, IReadOnlyList<string>? among, bool required)
            {
                if (bad is not null)
                    return null;
                if (!fields.TryGetValue(field, out var el))
                {
                    if (required)
                        bad = $"{field}\u0000missing";
                    return null;
                }
                if (el.ValueKind != JsonValueKind.String || (among is not null && !among.Contains(el.GetString()!)))
                {
                    bad = $"{field}\u0000must be {(among is null ? "a string" : "one of " + string.Join(", ", among))}";
                    return null;
                }
                return el.GetString();
            }

            long? expectedValue = null;
            if (fields.TryGetValue("value", out var valEl))
            {
                if (valEl.ValueKind != JsonValueKind.Number || !valEl.TryGetInt64(out var val))
                    return (null, Err("value", "must be an integer (what KVM_CHECK_EXTENSION returned)"));
                expectedValue = val;
            }
            var expectedExit = Text("exit", ReplayNames.Exits, required: false);
            var expectedLeaf = Text("leaf", null, required: false);
            if (bad is null && expectedLeaf is not null && !IsLeafText(expectedLeaf))
                bad = "leaf\u0000must be \"none\", an errno name, or L<level>:0x<attribute bits>";

            ReplayOp? op;
            switch (opName)
            {
                case "cap":
                    var fd = Text("fd", ["sys", "vm"], required: true);
                    op = new CapOp(line, fd == "vm", (uint)U64("cap", required: true, max: uint.MaxValue));
                    break;
                case "enable_cap":
                    op = new EnableCapOp(line, (uint)U64("cap", required: true, max: uint.MaxValue));
                    break;
                case "mmap":
                    ReplayNames.TryParseVmaKind(Text("kind", ReplayNames.VmaKinds, required: true) ?? "", out var kind);
                    op = new MmapOp(line, kind, U64("uaddr", required: true), U64("size", required: true), U64("offset", required: false));
                    break;
                case "munmap":
                    op = new MunmapOp(line, U64("uaddr", required: true), U64("size", required: true));
                    break;
                case "vcpu":
                    op = new VcpuOp(line, (uint)U64("slot", required: true, max: uint.MaxValue), U64("gpa", required: true), U64("uaddr", required: true));
                    break;
                case "access":
                    ReplayNames.TryParseAccess(Text("kind", ReplayNames.AccessKinds, required: true) ?? "", out var access);
                    op = new AccessOp(line, access, U64("gpa", required: true));
                    break;
                case "create_vm":
                    op = new CreateVmOp(line, U64("type", required: false));
                    break;
                case "create_gmem":
                    op = new CreateGmemOp(line, U64("size", required: true), U64("flags", required: false));
                    break;
                default:
                    var v = U64("v", required: true, max: 2);
                    if (bad is null && v is not (1 or 2))
                        bad = "v\u0000must be 1 (KVM_SET_USER_MEMORY_REGION) or 2 (KVM_SET_USER_MEMORY_REGION2)";
                    var slot = (uint)U64("slot", required: true, max: uint.MaxValue);
                    var flags = (uint)U64("flags", required: false, max: uint.MaxValue);
                    var gpa = U64("gpa", required: true);
                    var size = U64("size", required: true);
                    var uaddr = U64("uaddr", required: false);
                    var gmem = -1;
                    ulong gmemOffset = 0;
                    if (bad is null && v == 1)
                    {
                        foreach (var f in new[] { "gmem", "gmem_offset" })
                        {
                            if (fields.ContainsKey(f))
                                bad = $"{f}\u0000only valid with \"v\":2 (KVM_SET_USER_MEMORY_REGION has no guest_memfd fields)";
                        }
                    }
                    if (bad is null && fields.TryGetValue("gmem", out var gEl))
                    {
                        if (!TryReadHandle(gEl, out gmem, out var why))
                            bad = $"gmem\u0000{why}";
                        else if (gmem >= gmemsBefore)
                            bad = $"gmem\u0000handle {gmem} does not exist: {gmemsBefore} create_gmem line(s) come before this one";
                    }
                    gmemOffset = U64("gmem_offset", required: false);
                    op = new SetRegionOp(line, (int)v, slot, flags, gpa, size, uaddr, gmem, gmemOffset);
                    break;
            }
            if (bad is not null)
            {
                var parts = bad.Split('\u0000');
                return (null, Err(parts[0], parts[1]));
            }
            return (op! with { Expected = expected, ExpectedValue = expectedValue, ExpectedExit = expectedExit, ExpectedLeaf = expectedLeaf }, null);
        }
    }

    /// <summary>"none", an errno name, or L&lt;level 0-3&gt;:0x&lt;hex&gt; (the access line's "leaf").</summary>
    private static bool IsLeafText(string s)
    {
        if (s == "none" || (s != "0" && ErrnoText.TryParse(s, out _)))
            return true;
        return s.Length > 5 && s[0] == 'L' && s[1] is >= '0' and <= '3' && s.AsSpan(2, 3).SequenceEqual(":0x") &&
               ulong.TryParse(s.AsSpan(5), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _);
    }

    /// <summary>An unsigned 64-bit number: a JSON integer, or a string in decimal or 0x hex.</summary>
    internal static bool TryReadUnsigned(JsonElement el, out ulong value, out string why)
    {
        value = 0;
        why = "";
        switch (el.ValueKind)
        {
            case JsonValueKind.Number:
                if (el.TryGetUInt64(out value))
                    return true;
                why = $"{el.GetRawText()} is not an unsigned 64-bit integer";
                return false;
            case JsonValueKind.String:
                var s = el.GetString()!;
                if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
                {
                    var hex = s.AsSpan(2);
                    if (hex.Length > 0 && hex.Length <= 16 && ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
                        return true;
                    why = $"\"{s}\" is not an unsigned 64-bit hex number";
                    return false;
                }
                if (s.Length > 0 && s.All(char.IsAsciiDigit) && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value))
                    return true;
                why = $"\"{s}\" is not an unsigned 64-bit number (decimal or 0x hex)";
                return false;
            default:
                why = "must be a number, or a string in decimal or 0x hex";
                return false;
        }
    }

    private static bool TryReadHandle(JsonElement el, out int handle, out string why)
    {
        handle = -1;
        why = "must be -1 or the 0-based index of an earlier create_gmem";
        if (el.ValueKind == JsonValueKind.Number)
            return el.TryGetInt32(out handle) && handle >= -1;
        if (el.ValueKind == JsonValueKind.String)
            return int.TryParse(el.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out handle) && handle >= -1;
        return false;
    }
}
