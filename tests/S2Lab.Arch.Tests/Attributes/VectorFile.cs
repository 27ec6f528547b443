using System.Globalization;
using S2Lab.Arch.Attributes;

namespace S2Lab.Arch.Tests.Attributes;

/// <summary>Reads the CSV vector files (docs/arm-reference.md#vectors) from the output directory.</summary>
internal static class VectorFile
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Vectors", name);

    /// <summary>Rows as dictionaries keyed by header name. Handles double-quoted fields.</summary>
    public static IReadOnlyList<Dictionary<string, string>> Read(string name)
    {
        var lines = File.ReadAllLines(PathOf(name)).Where(l => l.Length > 0).ToArray();
        var header = Split(lines[0]);
        var rows = new List<Dictionary<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            var fields = Split(line);
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < header.Count; i++)
            {
                row[header[i]] = i < fields.Count ? fields[i] : "";
            }

            rows.Add(row);
        }

        return rows;
    }

    private static List<string> Split(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        foreach (var c in line)
        {
            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == ',' && !quoted)
            {
                fields.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        fields.Add(current.ToString());
        return fields;
    }

    public static byte Hex(string s) => byte.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static byte Bin(string s) => Convert.ToByte(s[2..], 2);

    public static Shareability Sh(string s) =>
        ShareabilityRules.TryParse(s, out var sh) ? sh : throw new FormatException($"bad SH '{s}'");
}
