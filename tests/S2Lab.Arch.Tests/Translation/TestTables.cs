using S2Lab.Arch.Translation;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>Shared helpers for the translation tests.</summary>
internal static class TestTables
{
    public const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

    public static Stage2Geometry Geometry(int ipaBits = 40, Granule granule = Granule.Size4K, int paBits = 48) =>
        VtcrEl2.ForIpaSize(ipaBits, paBits, granule).Validate(new Stage2Features(paBits)).GetOrThrow();

    public static Stage2PageTable Create(int ipaBits = 40, Granule granule = Granule.Size4K, bool fwb = false, bool dic = false,
        bool recordEvents = true, Stage2Tlb? tlb = null, ushort vmid = 1, bool tlbiRange = false, bool xnx = false) =>
        new(Geometry(ipaBits, granule), new Stage2TableOptions
        {
            Fwb = fwb,
            Dic = dic,
            RecordEvents = recordEvents,
            Tlb = tlb,
            Vmid = vmid,
            TlbiRange = tlbiRange,
            Xnx = xnx,
        });

    public static S2LeafAttributes Normal(Stage2PageTable t, S2Permissions perms = S2Permissions.ReadWrite) => new(t.NormalMemAttr, perms);

    public static S2LeafAttributes Device(S2Permissions perms = S2Permissions.ReadWrite) => new(0x1, perms);
}
