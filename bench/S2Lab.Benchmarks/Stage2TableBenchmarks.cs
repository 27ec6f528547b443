using BenchmarkDotNet.Attributes;
using S2Lab.Arch.Translation;

namespace S2Lab.Benchmarks;

/// <summary>
/// Stage-2 table operations on a 40-bit IPA, 4K-granule table (KVM's default geometry). Each invocation builds a table
/// on a shared table memory and TLB, does the operation, and destroys the table (the pages go back to the memory's free
/// list), so nothing is allocated per invocation and the JIT reaches steady state (no per-iteration setup).
/// Run: <c>dotnet run -c Release --project bench/S2Lab.Benchmarks -- --filter '*Stage2Table*'</c>.
/// </summary>
[MemoryDiagnoser]
public class Stage2TableBenchmarks
{
    private const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    private const ulong RamIpa = GiB;
    private const ulong RamPa = 0x80_0000_0000;

    private Stage2Geometry _geometry = null!;
    private Stage2TableOptions _options = null!;
    private S2LeafAttributes _attrs;

    [GlobalSetup]
    public void Setup()
    {
        _geometry = VtcrEl2.ForIpaSize(40).Validate(new Stage2Features(48)).GetOrThrow();
        _options = new Stage2TableOptions { Fwb = false, Dic = true, Memory = new SimulatedTableMemory(), Tlb = new Stage2Tlb() };
        _attrs = new S2LeafAttributes(0xF, S2Permissions.ReadWrite);
    }

    private Stage2PageTable NewTable() => new(_geometry, _options);

    /// <summary>262,144 page mappings (+ destroying the 513 tables).</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public long Map1GiBWith4KPages()
    {
        var t = NewTable();
        t.Map(RamIpa, GiB, RamPa, _attrs, 4 * KiB);
        long pages = t.TablePages;
        t.Destroy();
        return pages;
    }

    /// <summary>32,768 block mappings (+ destroy).</summary>
    [Benchmark(OperationsPerInvoke = 32_768)]
    public long Map64GiBWith2MBlocks()
    {
        var t = NewTable();
        t.Map(RamIpa, 64 * GiB, RamPa, _attrs, 2 * MiB);
        long pages = t.TablePages;
        t.Destroy();
        return pages;
    }

    /// <summary>1,024 block mappings (+ destroy).</summary>
    [Benchmark(OperationsPerInvoke = 1_024)]
    public long Map1TiBWith1GBlocks()
    {
        var t = NewTable();
        t.Map(0, 1024 * GiB, 0, _attrs);
        long pages = t.TablePages;
        t.Destroy();
        return pages;
    }

    /// <summary>262,144 page mappings then 262,144 unmappings (TLBI by IPA each, tables freed): per page, map + unmap.</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public long MapThenUnmap1GiBOf4KPages()
    {
        var t = NewTable();
        t.Map(RamIpa, GiB, RamPa, _attrs, 4 * KiB);
        t.Unmap(RamIpa, GiB);
        long pages = t.TablePages;
        t.Destroy();
        return pages;
    }

    /// <summary>A 1 GiB block split into 262,144 pages (513 tables built) and collapsed back: per page, split + collapse.</summary>
    [Benchmark(OperationsPerInvoke = 262_144)]
    public long SplitThenCollapse1GBlock()
    {
        var t = NewTable();
        t.Map(RamIpa, GiB, RamPa, _attrs);
        t.Split(RamIpa, GiB);
        t.Collapse(RamIpa, GiB, out long collapsed);
        t.Destroy();
        return collapsed;
    }
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
