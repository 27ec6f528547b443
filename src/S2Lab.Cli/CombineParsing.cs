using System.Globalization;
using S2Lab.Arch.Attributes;

namespace S2Lab.Cli;

/// <summary>Parsing of the values <c>s2lab combine</c> accepts, shared by the single and batch modes.</summary>
internal static class CombineParsing
{
    /// <summary>Strict batch form of a MAIR byte: 0xNN (two hex digits, either case).</summary>
    public static bool TryParseHexByte(ReadOnlySpan<char> s, out byte value)
    {
        value = 0;
        return s.Length == 4 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
            && byte.TryParse(s[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>Strict batch form of a MemAttr: 0bNNNN (four binary digits).</summary>
    public static bool TryParseMemAttr(ReadOnlySpan<char> s, out byte value)
    {
        value = 0;
        if (s.Length != 6 || s[0] != '0' || (s[1] != 'b' && s[1] != 'B'))
        {
            return false;
        }

        var v = 0;
        for (var i = 2; i < 6; i++)
        {
            if (s[i] != '0' && s[i] != '1')
            {
                return false;
            }

            v = (v << 1) | (s[i] - '0');
        }

        value = (byte)v;
        return true;
    }

    /// <summary>A 0/1 flag.</summary>
    public static bool TryParseBit(ReadOnlySpan<char> s, out bool value)
    {
        value = s.Length == 1 && s[0] == '1';
        return s.Length == 1 && (s[0] == '0' || s[0] == '1');
    }

    /// <summary>Lenient command-line form of a number: 0xNN, 0bNNNN or decimal, at most <paramref name="max"/>.</summary>
    public static bool TryParseNumber(string s, int max, out byte value)
    {
        value = 0;
        int v;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (!int.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v))
            {
                return false;
            }
        }
        else if (s.StartsWith("0b", StringComparison.OrdinalIgnoreCase))
        {
            var digits = s.AsSpan(2);
            if (digits.Length is 0 or > 8)
            {
                return false;
            }

            v = 0;
            foreach (var c in digits)
            {
                if (c is not ('0' or '1'))
                {
                    return false;
                }

                v = (v << 1) | (c - '0');
            }
        }
        else if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v))
        {
            return false;
        }

        if (v < 0 || v > max)
        {
            return false;
        }

        value = (byte)v;
        return true;
    }

    /// <summary>A comma-separated feature list: xs, mte2, mte-perm, none.</summary>
    public static bool TryParseFeatures(string s, out AttributeFeatures features, out string bad)
    {
        features = AttributeFeatures.None;
        bad = "";
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (part.ToLowerInvariant())
            {
                case "none":
                    break;
                case "xs":
                    features |= AttributeFeatures.Xs;
                    break;
                case "mte2" or "mte":
                    features |= AttributeFeatures.Mte2;
                    break;
                case "mte-perm" or "mte_perm":
                    features |= AttributeFeatures.MtePerm;
                    break;
                default:
                    bad = part;
                    return false;
            }
        }

        return true;
    }
}
