using System.Globalization;
using System.Text;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>Writes operations back as replay lines (hex for addresses and sizes), optionally with an "expect" field.</summary>
public static class ReplayWriter
{
    /// <summary>One JSON line for <paramref name="op"/>; <paramref name="expect"/> (if any) is written as "expect".</summary>
    public static string Format(ReplayOp op, Errno? expect = null) => Format(op, expect, null);

    /// <summary>
    /// One JSON line for <paramref name="op"/> with "expect" and, from <paramref name="details"/>, the cap value, the
    /// access exit and the stage-2 leaf it observed.
    /// </summary>
    public static string Format(ReplayOp op, Errno? expect, ReplayStep? details)
    {
        var sb = new StringBuilder("{");
        void Str(string k, string v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":\"{v}\",");
        void Num(string k, long v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":{v},");
        void Hex(string k, ulong v) => sb.Append(CultureInfo.InvariantCulture, $"\"{k}\":\"0x{v:x}\",");
        Str("op", op.OpName);
        switch (op)
        {
            case CreateVmOp c:
                if (c.Type != 0)
                    Hex("type", c.Type);
                break;
            case CreateGmemOp g:
                Hex("size", g.Size);
                Hex("flags", g.Flags);
                break;
            case SetRegionOp s:
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
            case CapOp c:
                Str("fd", c.OnVmFd ? "vm" : "sys");
                Num("cap", c.Cap);
                break;
            case EnableCapOp en:
                Num("cap", en.Cap);
                break;
            case MmapOp m:
                Str("kind", ReplayNames.Name(m.Kind));
                Hex("uaddr", m.UserspaceAddr);
                Hex("size", m.Size);
                if (m.Offset != 0)
                    Hex("offset", m.Offset);
                break;
            case MunmapOp u:
                Hex("uaddr", u.UserspaceAddr);
                Hex("size", u.Size);
                break;
            case VcpuOp v:
                Hex("slot", v.Slot);
                Hex("gpa", v.GuestPhysAddr);
                Hex("uaddr", v.UserspaceAddr);
                break;
            case AccessOp a:
                Str("kind", ReplayNames.Name(a.Kind));
                Hex("gpa", a.GuestPhysAddr);
                break;
            default:
                throw new ArgumentException($"unknown replay operation {op.GetType().Name}", nameof(op));
        }
        if ((expect ?? op.Expected) is { } e)
            Str("expect", ErrnoText.Format(e));
        if (details is { } d)
        {
            if (d.Value is { } value)
                Num("value", value);
            if (d.Exit is { } exit)
                Str("exit", exit);
            if (d.Leaf is { } leaf)
                Str("leaf", leaf);
        }
        sb.Length--; // the last comma
        return sb.Append('}').ToString();
    }

    /// <summary>All of <paramref name="steps"/> as golden lines (each with the result as "expect").</summary>
    public static IEnumerable<string> Golden(IEnumerable<ReplayStep> steps) => steps.Select(s => Format(s.Op, s.Result, s));
}
