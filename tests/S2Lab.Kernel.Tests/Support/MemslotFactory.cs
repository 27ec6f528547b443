using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Tests.Support;

internal static class MemslotFactory
{
    /// <summary>A bare memslot for data-structure tests.</summary>
    public static Memslot Make(int id, ulong baseGfn, ulong npages) =>
        new(0, id, baseGfn, npages, KvmMemFlags.None, 0x1000_0000 + (baseGfn << 12), null, 0, false);
}
