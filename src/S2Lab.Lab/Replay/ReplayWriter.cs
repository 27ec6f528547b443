using System.Globalization;
using System.Text;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>Writes operations back as replay lines (hex for addresses and sizes), optionally with an "expect" field.</summary>
public static class ReplayWriter
{
    /// <summary>One JSON line for <paramref name="op"/>; <paramref name="expect"/> (if any) is written as "expect".</summary>
    public static string Format(ReplayOp op, Errno? expect = null)
    {
        var sb = new StringBuilder("{");
        void Str(string k, string v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":\"{v}\",");
        void Num(string k, long v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":{v},");
        void Hex(string k, ulong v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":\"0x{v:x}\",");
        switch (op)
        {
            case CreateVmOp c:
                Str("op", "create_vm");
                if (c.Type != 0)
                    Hex("type", c.Type);
                break;
            case CreateGmemOp g:
                Str("op", "create_gmem");
                Hex("size", g.Size);
                Hex("flags", g.Flags);
                break;
            case SetRegionOp s:
                Str("op", "set");
                Num("v", s.Version);
                Hex("slot", s.Slot);
                Hex("flags", s.Flags);
                Hex("gpa", s.GuestPhysAddr);
                Hex("size", s.MemorySize);
                Hex("uaddr", s.UserspaceAddr);
                if (s.Version == 2)
                {
                    Num("gmem", s.Gmem);
                    Hex("gmem_offset", s.GmemOffset);
                }
                break;
            default:
                throw new ArgumentException($"unknown replay operation {op.GetType().Name}", nameof(op));
        }
        if ((expect ?? op.Expected) is { } e)
            Str("expect", ErrnoText.Format(e));
        sb.Length--; // the last comma
        return sb.Append('}').ToString();
    }

    /// <summary>All of <paramref name="steps"/> as golden lines (each with the result as "expect").</summary>
    public static IEnumerable<string> Golden(IEnumerable<ReplayStep> steps) => steps.Select(s => Format(s.Op, s.Result));
}
