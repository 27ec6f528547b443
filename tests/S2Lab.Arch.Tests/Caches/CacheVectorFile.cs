using System.Globalization;
using S2Lab.Arch.Attributes;
using S2Lab.Arch.Caches;

namespace S2Lab.Arch.Tests.Caches;

/// <summary>One case of Vectors/cache-vectors.txt: its options and steps, each with its line number.</summary>
public sealed record CacheVectorCase(string Name, int Line, IReadOnlyList<string> Options, IReadOnlyList<(int Line, string[] Tokens)> Steps)
{
    public override string ToString() => Name;
}

/// <summary>Reads and runs the cache vectors. A malformed line fails with the file, line and token.</summary>
internal static class CacheVectorFile
{
    public const string FileName = "cache-vectors.txt";

    public static string PathOf() => Path.Combine(AppContext.BaseDirectory, "Caches", "Vectors", FileName);

    public static IReadOnlyList<CacheVectorCase> Load() => Parse(File.ReadLines(PathOf()));

    public static IReadOnlyList<CacheVectorCase> Parse(IEnumerable<string> lines)
    {
        var cases = new List<CacheVectorCase>();
        string? name = null;
        var start = 0;
        var options = new List<string>();
        var steps = new List<(int, string[])>();
        var n = 0;
        foreach (var raw in lines)
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (name is null)
            {
                if (tokens is not ["case", var caseName])
                {
                    throw Bad(n, $"expected 'case NAME', found '{line}'");
                }

                (name, start) = (caseName, n);
                options = [];
                steps = [];
            }
            else if (tokens is ["end"])
            {
                cases.Add(new CacheVectorCase(name, start, options, steps));
                name = null;
            }
            else if (tokens[0] == "options" && steps.Count == 0)
            {
                options.AddRange(tokens.Skip(1));
            }
            else
            {
                steps.Add((n, tokens));
            }
        }

        return name is null ? cases : throw Bad(start, $"case '{name}' has no 'end'");
    }

    public static Exception Bad(int line, string message) => new FormatException($"{FileName}:{line}: {message}");

    /// <summary>Runs a case; fails with the line of the first step whose result differs.</summary>
    public static void Run(CacheVectorCase c)
    {
        var memory = new SparseLineMemory();
        var cache = new CacheSystem(memory, OptionsOf(c));
        foreach (var (line, t) in c.Steps)
        {
            string Token(int i) => i < t.Length ? t[i] : throw Bad(line, $"'{string.Join(' ', t)}' needs a field {i + 1}");
            byte[] Expected(int arrowAt) => Token(arrowAt) == "->" ? Hex(line, Token(arrowAt + 1)) : throw Bad(line, "expected '->'");

            switch (t[0])
            {
                case "init":
                    memory.WriteBytes(Address(line, Token(1)), Hex(line, Token(2)));
                    break;
                case "write":
                    cache.Write(Who(line, Token(1)), Address(line, Token(2)), Attr(line, Token(3), AccessKind.Data), Hex(line, Token(4)));
                    break;
                case "read":
                case "fetch":
                    {
                        var expected = Expected(4);
                        var got = new byte[expected.Length];
                        var kind = t[0] == "read" ? AccessKind.Data : AccessKind.InstructionFetch;
                        var attr = Attr(line, Token(3), kind);
                        var path = kind == AccessKind.Data
                            ? cache.Read(Who(line, Token(1)), Address(line, Token(2)), attr, got)
                            : cache.Fetch(Who(line, Token(1)), Address(line, Token(2)), attr, got);
                        Check(c, line, expected, got, $"{t[0]} ({path})");
                        break;
                    }

                case "dc":
                    {
                        var op = Token(1) switch
                        {
                            "cvac" => CacheOp.DcCvac,
                            "ivac" => CacheOp.DcIvac,
                            "civac" => CacheOp.DcCivac,
                            var o => throw Bad(line, $"unknown DC op '{o}'"),
                        };
                        var length = (ulong)CacheLine.Size;
                        foreach (var extra in t.Skip(3))
                        {
                            if (extra == "el1-vm")
                            {
                                op = CacheOps.AtEl1(op, hcrVm: true);
                            }
                            else
                            {
                                length = Address(line, extra);
                            }
                        }

                        cache.Maintain(op, Address(line, Token(2)), length);
                        break;
                    }

                case "ic":
                    switch (Token(1))
                    {
                        case "ivau":
                            cache.InvalidateInstructionCache(Address(line, Token(2)));
                            break;
                        case "iallu":
                            cache.InvalidateInstructionCacheAll(Who(line, Token(2)).Id);
                            break;
                        case "ialluis":
                            cache.InvalidateInstructionCacheAllInnerShareable();
                            break;
                        default:
                            throw Bad(line, $"unknown IC op '{t[1]}'");
                    }

                    break;
                case "evict":
                    cache.Evict(Address(line, Token(1)));
                    break;
                case "prefetch":
                    cache.Prefetch(Address(line, Token(1)), Attr(line, Token(2), AccessKind.Data));
                    break;
                case "state":
                    {
                        var expected = Token(3) switch
                        {
                            "invalid" => LineState.Invalid,
                            "clean" => LineState.Clean,
                            "dirty" => LineState.Dirty,
                            var s => throw Bad(line, $"unknown line state '{s}'"),
                        };
                        _ = Token(2) == "->" ? 0 : throw Bad(line, "expected '->'");
                        var got = cache.StateOf(Address(line, Token(1)));
                        Assert.True(expected == got, $"{c.Name} ({FileName}:{line}): line state {got}, expected {expected}");
                        break;
                    }

                case "poc":
                    {
                        var expected = Expected(2);
                        var got = new byte[expected.Length];
                        memory.ReadBytes(Address(line, Token(1)), got);
                        Check(c, line, expected, got, "PoC");
                        break;
                    }

                default:
                    throw Bad(line, $"unknown step '{t[0]}'");
            }
        }
    }

    private static void Check(CacheVectorCase c, int line, byte[] expected, byte[] got, string what) =>
        Assert.True(expected.AsSpan().SequenceEqual(got),
            $"{c.Name} ({FileName}:{line}): {what} returned {Convert.ToHexStringLower(got)}, expected {Convert.ToHexStringLower(expected)}");

    private static CacheOptions OptionsOf(CacheVectorCase c)
    {
        var o = new CacheOptions { DataLines = 64, DataWays = 4, InstructionLines = 16, InstructionWays = 2 };
        foreach (var option in c.Options)
        {
            var (key, value) = option.Split('=') is [var k, var v] ? (k, v) : throw Bad(c.Line + 1, $"option '{option}' is not KEY=VALUE");
            int Int() => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var i)
                ? i
                : throw Bad(c.Line + 1, $"option '{key}': '{value}' is not a number");
            o = key switch
            {
                "idc" => o with { Idc = Int() != 0 },
                "dic" => o with { Dic = Int() != 0 },
                "eager" => o with { DirtyLines = Int() != 0 ? DirtyLinePolicy.WriteBackEagerly : DirtyLinePolicy.Retain },
                "speculate" => o with { Speculation = Int() != 0 ? EveryLineCacheable.Instance : null },
                "nc-icache" => o with { InstructionCacheHoldsNonCacheable = Int() != 0 },
                "lines" => o with { DataLines = Int() },
                "ways" => o with { DataWays = Int() },
                _ => throw Bad(c.Line + 1, $"unknown option '{key}'"),
            };
        }

        return o;
    }

    private static ulong Address(int line, string text) =>
        text.StartsWith("0x", StringComparison.Ordinal) &&
        ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw Bad(line, $"'{text}' is not a 0x address");

    private static byte[] Hex(int line, string text)
    {
        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            throw Bad(line, $"'{text}' is not an even number of hex digits");
        }
    }

    private static Accessor Who(int line, string text) =>
        Accessor.TryParse(text, out var a) ? a : throw Bad(line, $"'{text}' is not an accessor (cpuN, cdevN, ncdevN)");

    /// <summary>The attribute of an access: a name, a MAIR byte, or a stage-1/stage-2 combine.</summary>
    public static MemoryAttributes Attr(int line, string text, AccessKind kind)
    {
        switch (text)
        {
            case "WB":
                return MemoryAttributes.NormalWriteBack;
            case "WT":
                return Mair.Decode(0xBB, default).Attributes;
            case "NC":
                return MemoryAttributes.NormalNonCacheable();
            case "DEV":
                return MemoryAttributes.Device(DeviceType.nGnRE);
            case "x":
                return default;
        }

        if (text.StartsWith("mair=", StringComparison.Ordinal))
        {
            return Mair.Decode((byte)Address(line, text[5..]), default).Attributes;
        }

        byte s1 = 0, s2 = 0;
        bool fwb = false, m = true, c = true, seen = false;
        foreach (var part in text.Split(','))
        {
            var (key, value) = part.Split('=') is [var k, var v] ? (k, v) : throw Bad(line, $"attribute part '{part}' is not KEY=VALUE");
            switch (key)
            {
                case "s1":
                    s1 = (byte)Address(line, value);
                    seen = true;
                    break;
                case "s2":
                    s2 = (byte)Address(line, value);
                    break;
                case "fwb":
                    fwb = value == "1";
                    break;
                case "m":
                    m = value == "1";
                    break;
                case "c":
                    c = value == "1";
                    break;
                default:
                    throw Bad(line, $"unknown attribute field '{key}' in '{text}'");
            }
        }

        if (!seen)
        {
            throw Bad(line, $"'{text}' is not an attribute (WB, WT, NC, DEV, x, mair=0xNN, s1=..,s2=..,fwb=..)");
        }

        var input = new CombineInput(s1, Shareability.ISH, s2, Shareability.ISH, fwb) { SctlrM = m, SctlrC = c, Access = kind };
        return AttributeCombiner.Combine(input).Attributes;
    }

    /// <summary>The worst case of <see cref="ISpeculativeAllocation"/>: every line has a cacheable mapping (the host linear map).</summary>
    public sealed class EveryLineCacheable : ISpeculativeAllocation
    {
        public static readonly EveryLineCacheable Instance = new();

        public bool MayAllocate(ulong linePa) => true;
    }
}
