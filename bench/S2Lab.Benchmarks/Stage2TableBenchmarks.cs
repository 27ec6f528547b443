using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Translation;

namespace S2Lab.Benchmarks;

/// <summary>
/// Stage-2 table operations on a 40-bit IPA, 4K-granule table (KVM's default geometry).
/// Run: <c>dotnet run -c Release --project bench/S2Lab.Benchmarks -- --filter '*Stage2Table*'</c>.
/// </summary>
[MemoryDiagnoser]
public class Stage2TableBenchmarks
{
    private const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    private const ulong RamIpa = GiB;
    private const ulong RamPa = 0x80_0000_0000;

    private Stage2PageTable _table = null!;
    private S2LeafAttributes _attrs;

    private static Stage2PageTable NewTable(bool fwb = false) =>
        new(VtcrEl2.ForIpaSize(40).Validate(new Stage2Features(48)).GetOrThrow(), new Stage2TableOptions { Fwb = fwb, Dic = true });

    [IterationSetup(Targets = [nameof(Map1GiBWith4KPages), nameof(Map64GiBWith2MBlocks), nameof(Map1TiBWith1GBlocks)])]
    public void EmptyTable()
    {
        _table = NewTable();
        _attrs = new S2LeafAttributes(_table.NormalMemAttr, S2Permissions.ReadWrite);
    }

    [IterationSetup(Targets = [nameof(Unmap1GiBOf4KPages)])]
    public void MappedTable()
    {
        EmptyTable();
        _table.Map(RamIpa, GiB, RamPa, _attrs, 4 * KiB);
    }

    [IterationSetup(Targets = [nameof(Split1GBlockToPages)])]
    public void MappedBlock()
    {
        EmptyTable();
        _table.Map(RamIpa, GiB, RamPa, _attrs);
    }

    /// <summary>262,144 page mappings.</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public Stage2Errno Map1GiBWith4KPages() => _table.Map(RamIpa, GiB, RamPa, _attrs, 4 * KiB);

    /// <summary>32,768 block mappings.</summary>
    [Benchmark(OperationsPerInvoke = 32_768)]
    public Stage2Errno Map64GiBWith2MBlocks() => _table.Map(RamIpa, 64 * GiB, RamPa, _attrs, 2 * MiB);

    /// <summary>1,024 block mappings.</summary>
    [Benchmark(OperationsPerInvoke = 1_024)]
    public Stage2Errno Map1TiBWith1GBlocks() => _table.Map(0, 1024 * GiB, 0, _attrs);

    /// <summary>262,144 page unmappings (TLBI by IPA each, tables freed).</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public Stage2Errno Unmap1GiBOf4KPages() => _table.Unmap(RamIpa, GiB);

    /// <summary>Splitting a 1 GiB block into 262,144 pages (513 new tables), then walking them.</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public Stage2Errno Split1GBlockToPages() => _table.Split(RamIpa, GiB);
}

/// <summary>Translation: TLB hits and full walks. Run with <c>--filter '*Stage2Translate*'</c>.</summary>
public class Stage2TranslateBenchmarks
{
    private const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    private Stage2PageTable _table = null!;
    private ulong[] _ipas = null!;

    [GlobalSetup]
    public void Setup()
    {
        _table = new Stage2PageTable(VtcrEl2.ForIpaSize(40).Validate(new Stage2Features(48)).GetOrThrow());
        _table.Map(GiB, 64 * MiB, 0x80_0000_0000, new S2LeafAttributes(0xF, S2Permissions.ReadWrite), 4 * KiB);
        _ipas = new ulong[256];
        for (int i = 0; i < _ipas.Length; i++)
        {
            _ipas[i] = GiB + (((ulong)i * 40503UL) & 16383UL) * 4 * KiB + 0x10;
        }

        foreach (ulong ipa in _ipas)
        {
            _table.Translate(ipa, S2AccessKind.Read);
        }
    }

    /// <summary>256 translations that hit the TLB.</summary>
    [Benchmark(OperationsPerInvoke = 256)]
    public ulong TlbHit()
    {
        ulong sum = 0;
        foreach (ulong ipa in _ipas)
        {
            sum += _table.Translate(ipa, S2AccessKind.Read).Pa;
        }

        return sum;
    }

    /// <summary>256 full 3-level walks, TLB bypassed.</summary>
    [Benchmark(OperationsPerInvoke = 256)]
    public ulong Walk()
    {
        ulong sum = 0;
        foreach (ulong ipa in _ipas)
        {
            sum += _table.Translate(ipa, S2AccessKind.Read, useTlb: false).Pa;
        }

        return sum;
    }

    /// <summary>256 GetLeaf lookups (the software walker with a visitor, as KVM's kvm_pgtable_get_leaf).</summary>
    [Benchmark(OperationsPerInvoke = 256)]
    public ulong GetLeaf()
    {
        ulong sum = 0;
        foreach (ulong ipa in _ipas)
        {
            sum += _table.GetLeaf(ipa).Descriptor.Raw;
        }

        return sum;
    }
}
