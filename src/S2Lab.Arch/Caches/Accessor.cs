using System.Globalization;

namespace S2Lab.Arch.Caches;

/// <summary>What kind of agent makes an access, which decides its path to the point of coherency.</summary>
public enum AccessorKind : byte
{
    /// <summary>
    /// A PE (host CPU at EL2/EL0, or a vCPU at EL1/EL0: the same physical CPUs). Its data accesses go through the
    /// shared data cache when their effective attributes are cacheable; its instruction fetches through its own I-cache.
    /// </summary>
    Cpu,

    /// <summary>
    /// A device whose port is hardware-coherent with the CPUs' caches (it snoops them): it reads dirty lines, and its
    /// writes update lines the CPUs hold. Example: a GPU behind Grace Hopper's coherent NVLink-C2C.
    /// </summary>
    CoherentDevice,

    /// <summary>A device that reads and writes memory at the PoC and never looks at a cache (non-snooping DMA).</summary>
    NonCoherentDevice,
}

/// <summary>An agent that accesses memory: a CPU (with the index of its I-cache) or a device.</summary>
/// <param name="Kind">CPU, coherent device or non-coherent device.</param>
/// <param name="Id">CPU index (selects the I-cache) or device number (only a label).</param>
public readonly record struct Accessor(AccessorKind Kind, int Id)
{
    /// <summary>CPU <paramref name="id"/>.</summary>
    public static Accessor Cpu(int id) => new(AccessorKind.Cpu, id);

    /// <summary>A device that snoops the CPUs' caches.</summary>
    public static Accessor CoherentDevice(int id) => new(AccessorKind.CoherentDevice, id);

    /// <summary>A device that bypasses every cache.</summary>
    public static Accessor NonCoherentDevice(int id) => new(AccessorKind.NonCoherentDevice, id);

    /// <summary>"cpu0", "cdev1" (coherent device), "ncdev2" (non-coherent device).</summary>
    public override string ToString() => Kind switch
    {
        AccessorKind.Cpu => $"cpu{Id}",
        AccessorKind.CoherentDevice => $"cdev{Id}",
        _ => $"ncdev{Id}",
    };

    /// <summary>Parses the <see cref="ToString"/> form (case-insensitive).</summary>
    public static bool TryParse(string text, out Accessor accessor)
    {
        accessor = default;
        text = text.ToLowerInvariant();
        (string Prefix, AccessorKind Kind)[] forms =
            [("ncdev", AccessorKind.NonCoherentDevice), ("cdev", AccessorKind.CoherentDevice), ("cpu", AccessorKind.Cpu)];
        foreach (var (prefix, kind) in forms)
        {
            if (text.StartsWith(prefix, StringComparison.Ordinal) &&
                int.TryParse(text.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                accessor = new Accessor(kind, id);
                return true;
            }
        }

        return false;
    }
}
