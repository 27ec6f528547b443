using CsCheck;
using S2Lab.Arch.Translation;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Tests.Translation;

/// <summary>
/// Random sequences of map / unmap / write-protect / restrict / relax / split / collapse keep the hardware tables equal
/// to a plain page-granular dictionary model of the mapping (output address, attribute bits, and the extent of the leaf
/// each page belongs to, since Linux semantics depend on it: a partly covered block is dropped whole by unmap and loses
/// its uncovered part when map breaks it).
/// </summary>
public class Stage2ModelPropertyTests
{
    private sealed record Op(int Kind, int Page, int Pages, int PaPage, int MemAttrIndex, int Perms, int MaxSizeIndex, bool Af, int Sw);

    private readonly record struct Entry(ulong Pa, ulong Attr, ulong LeafBase, int LeafLevel);

    private static readonly byte[] MemAttrs = [0xF, 0x5, 0x1, 0x6];

    private static Gen<Op> OpGen(int windowPages, int blockPages) =>
        Gen.Select(Gen.Select(Gen.Int[0, 9], Gen.Int[0, windowPages - 1], Gen.Int[1, windowPages], Gen.Int[0, 4 * windowPages - 1]),
                Gen.Select(Gen.Int[0, 3], Gen.Int[0, 7], Gen.Int[0, 2], Gen.Bool, Gen.Int[0, 1]))
            .Select(x =>
            {
                ((int kind, int page, int pages, int paPage), (int ma, int perms, int maxSize, bool af, int sw)) = x;
                // Half of the ranges are block aligned so that blocks, collapse and split have something to do.
                if ((paPage & 1) == 0)
                {
                    page = page / blockPages * blockPages;
                    pages = Math.Max(blockPages, pages / blockPages * blockPages);
                    paPage = paPage / blockPages * blockPages;
                }

                pages = Math.Min(pages, windowPages - page);
                return new Op(kind, page, pages, paPage, ma, perms, maxSize, af, sw);
            });

    [Theory]
    [InlineData(Granule.Size4K, 40, 150)]
    [InlineData(Granule.Size16K, 40, 100)]
    [InlineData(Granule.Size64K, 42, 25)]
    public void Random_operation_sequences_keep_the_tables_equal_to_a_page_model(Granule granule, int ipaBits, int iterations)
    {
        var geo = Geometry(ipaBits, granule);
        ulong page = geo.TableBytes;
        int blockPages = geo.EntriesPerTable; // pages per level-2 block
        int windowPages = 4 * blockPages;
        ulong windowBase = geo.LevelSize(geo.MinBlockLevel) * 2; // aligned to the largest block KVM uses
        ulong paBase = 0x40_0000_0000;

        Gen.Select(OpGen(windowPages, blockPages).Array[1, 14], Gen.Bool).Sample((ops, fwb) =>
        {
            var t = new Stage2PageTable(geo, new Stage2TableOptions { Fwb = fwb, Dic = false });
            var model = new Dictionary<ulong, Entry>();
            foreach (var op in ops)
            {
                Apply(t, model, geo, op, windowBase, paBase);
                Compare(t, model, geo, windowBase, (ulong)windowPages * page, op);
            }

            // Unmapping everything frees every table but the start level: no leaks.
            Assert.Equal(Stage2Errno.None, t.Unmap(windowBase, (ulong)windowPages * page));
            Assert.Equal(geo.ConcatenatedTables, t.TablePages);
        }, iter: iterations);
    }

    /// <summary>
    /// One leaf type (docs/architecture.md step 2): after random operation sequences, every leaf the table reports for a
    /// range (<see cref="Stage2PageTable.CollectLeaves"/>) equals the leaf a lookup (<see cref="Stage2PageTable.GetLeaf"/>,
    /// kvm_pgtable_get_leaf) returns for its first, last and a middle IPA, including size, PA and FWB; a lookup between
    /// reported leaves finds no valid leaf.
    /// </summary>
    [Theory]
    [InlineData(Granule.Size4K, 40, 80)]
    [InlineData(Granule.Size64K, 42, 20)]
    public void S2Leaf_from_lookup_equals_leaf_from_map(Granule granule, int ipaBits, int iterations)
    {
        var geo = Geometry(ipaBits, granule);
        ulong page = geo.TableBytes;
        int blockPages = geo.EntriesPerTable;
        int windowPages = 4 * blockPages;
        ulong windowBase = geo.LevelSize(geo.MinBlockLevel) * 2;
        ulong windowSize = (ulong)windowPages * page;

        Gen.Select(OpGen(windowPages, blockPages).Array[1, 10], Gen.Bool, Gen.Int[0, windowPages - 1]).Sample((ops, fwb, probe) =>
        {
            var t = new Stage2PageTable(geo, new Stage2TableOptions { Fwb = fwb });
            var model = new Dictionary<ulong, Entry>();
            foreach (var op in ops)
                Apply(t, model, geo, op, windowBase, 0x40_0000_0000);

            var leaves = t.CollectLeaves(windowBase, windowSize);
            var covered = new HashSet<ulong>();
            foreach (var leaf in leaves)
            {
                Assert.True(leaf.IsValid, $"reported leaf {leaf} is not valid");
                Assert.Equal(fwb, leaf.Fwb);
                Assert.Equal(geo.LevelSize(leaf.Level), leaf.Size);
                Assert.Equal(leaf.Descriptor.LeafOutputAddress(geo.Granule, leaf.Level, geo.AddressFormat), leaf.Pa);
                foreach (var ipa in (ReadOnlySpan<ulong>)[leaf.Ipa, leaf.Ipa + leaf.Size / 2, leaf.Ipa + leaf.Size - 1])
                {
                    Assert.Equal(leaf, t.GetLeaf(ipa));
                    Assert.Equal(leaf.Pa + (ipa - leaf.Ipa), leaf.Translate(ipa));
                }

                for (ulong o = 0; o < leaf.Size; o += page)
                    covered.Add(leaf.Ipa + o);
            }

            var probeIpa = windowBase + (ulong)probe * page;
            var found = t.GetLeaf(probeIpa);
            Assert.Equal(covered.Contains(probeIpa), found.IsValid);
            Assert.True(found.Contains(probeIpa), $"lookup of 0x{probeIpa:x} returned {found}");
        }, iter: iterations);
    }

    /// <summary>
    /// TLB coherence: every operation does the TLB maintenance it needs (write-protect is followed by the VMID flush its
    /// callers do), so a translation through the TLB always equals a fresh walk, for every access kind.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Translations_through_the_TLB_always_match_a_fresh_walk(bool tlbiRange)
    {
        var geo = Geometry(40, Granule.Size4K);
        ulong page = geo.TableBytes;
        int blockPages = geo.EntriesPerTable;
        int windowPages = 4 * blockPages;
        ulong windowBase = geo.LevelSize(1) * 2;
        OpGen(windowPages, blockPages).Array[1, 12].Sample(ops =>
        {
            var t = new Stage2PageTable(geo, new Stage2TableOptions { TlbiRange = tlbiRange, Tlb = new Stage2Tlb(geo.Granule, entriesLog2: 10) });
            var model = new Dictionary<ulong, Entry>();
            foreach (var op in ops)
            {
                Apply(t, model, geo, op, windowBase, 0x40_0000_0000);
                if (op.Kind == 4)
                {
                    t.InvalidateTlbVmid(); // kvm_mmu_wp_memory_region flushes after kvm_pgtable_stage2_wrprotect
                }

                for (ulong p = windowBase; p < windowBase + (ulong)windowPages * page; p += page * 61)
                {
                    foreach (var access in (S2AccessKind[])[S2AccessKind.Read, S2AccessKind.Write, S2AccessKind.Execute])
                    {
                        var viaTlb = t.Translate(p + 0x40, access);
                        var walk = t.Translate(p + 0x40, access, useTlb: false);
                        Assert.True(viaTlb with { FromTlb = false } == walk, $"after {op}: {access} 0x{p:x}: TLB {viaTlb}, walk {walk}");
                    }
                }
            }
        }, iter: 100);
    }

    private static Stage2Geometry Geometry(int ipaBits, Granule g) => TestTables.Geometry(ipaBits, g);

    /// <summary>Levels at which KVM places blocks (KVM_PGTABLE_MIN_BLOCK_LEVEL and the block levels in docs/arm-reference.md#levels, 48-bit OA).</summary>
    private static bool KvmBlockLevel(Granule g, int level) => g == Granule.Size4K ? level is 1 or 2 : level == 2;

    private static void Apply(Stage2PageTable t, Dictionary<ulong, Entry> model, Stage2Geometry geo, Op op, ulong windowBase, ulong paBase)
    {
        ulong page = geo.TableBytes;
        ulong ipa = windowBase + (ulong)op.Page * page;
        ulong size = (ulong)op.Pages * page;
        ulong end = ipa + size;
        var perms = (S2Permissions)op.Perms;
        switch (op.Kind)
        {
            case 0 or 1 or 2:
                {
                    ulong pa = paBase + (ulong)op.PaPage * page;
                    ulong maxSize = op.MaxSizeIndex switch { 0 => page, 1 => geo.LevelSize(2), _ => ulong.MaxValue };
                    var attrs = new S2LeafAttributes(MemAttrs[op.MemAttrIndex], perms, AccessFlag: op.Af, SoftwareBits: op.Sw);
                    Assert.Equal(Stage2Errno.None, t.Map(ipa, size, pa, attrs, maxSize));
                    ModelMap(model, geo, ipa, end, pa, attrs.ToTemplate(), maxSize);
                    break;
                }

            case 3:
                Assert.Equal(Stage2Errno.None, t.Unmap(ipa, size));
                foreach (var leaf in LeavesTouching(model, geo, ipa, end))
                {
                    RemoveLeaf(model, geo, leaf);
                }

                break;
            case 4:
                Assert.Equal(Stage2Errno.None, t.WriteProtect(ipa, size));
                UpdateLeaves(model, geo, ipa, end, e => e with { Attr = e.Attr & ~B.S2ApWrite });
                break;
            case 5:
                Assert.Equal(Stage2Errno.None, t.RestrictPermissions(ipa, size, perms, out _));
                UpdateLeaves(model, geo, ipa, end, e => e with
                {
                    Attr = (e.Attr & ~((perms.HasFlag(S2Permissions.Read) ? B.S2ApRead : 0) | (perms.HasFlag(S2Permissions.Write) ? B.S2ApWrite : 0)))
                           | (perms.HasFlag(S2Permissions.Execute) ? B.Xn1 : 0),
                });
                break;
            case 6:
                {
                    var r = t.RelaxPermissions(ipa, perms);
                    bool mapped = model.ContainsKey(ipa);
                    Assert.Equal(mapped ? Stage2Errno.None : Stage2Errno.EAGAIN, r);
                    UpdateLeaves(model, geo, ipa, ipa + page, e => e with
                    {
                        Attr = (e.Attr | (perms.HasFlag(S2Permissions.Read) ? B.S2ApRead : 0) | (perms.HasFlag(S2Permissions.Write) ? B.S2ApWrite : 0))
                               & ~(perms.HasFlag(S2Permissions.Execute) ? B.XnMask : 0),
                    });
                    break;
                }

            case 7:
                Assert.Equal(Stage2Errno.None, t.Split(ipa, size));
                foreach (var leaf in LeavesTouching(model, geo, ipa, end).Where(l => l.Level < 3))
                {
                    for (ulong p = leaf.Base; p < leaf.Base + geo.LevelSize(leaf.Level); p += page)
                    {
                        model[p] = model[p] with { LeafBase = p, LeafLevel = 3 };
                    }
                }

                break;
            default:
                Assert.Equal(Stage2Errno.None, t.Collapse(ipa, size, out _));
                ModelCollapse(model, geo, ipa, end);
                break;
        }
    }

    private static void ModelMap(Dictionary<ulong, Entry> model, Stage2Geometry geo, ulong ipa, ulong end, ulong pa, ulong attr, ulong maxSize)
    {
        ulong page = geo.TableBytes;

        // A block reaching outside the range is broken (map) and its pages outside the range are lost.
        foreach (var leaf in LeavesTouching(model, geo, ipa, end))
        {
            ulong leafEnd = leaf.Base + geo.LevelSize(leaf.Level);
            if (leaf.Base < ipa || leafEnd > end)
            {
                for (ulong p = leaf.Base; p < leafEnd; p += page)
                {
                    if (p < ipa || p >= end)
                    {
                        model.Remove(p);
                    }
                }
            }
        }

        // Greedy layout: at each address the largest allowed leaf that fits and is aligned in IPA and PA.
        for (ulong a = ipa; a < end;)
        {
            ulong oa = pa + (a - ipa);
            int level = 3;
            for (int l = geo.StartLevel; l < 3; l++)
            {
                ulong s = geo.LevelSize(l);
                if (s <= maxSize && KvmBlockLevel(geo.Granule, l) && s <= end - a && ((a | oa) & (s - 1)) == 0)
                {
                    level = l;
                    break;
                }
            }

            ulong size = geo.LevelSize(level);
            bool unchanged = model.TryGetValue(a, out var old) && old.LeafBase == a && old.LeafLevel == level && old.Pa == oa &&
                             ((old.Attr ^ attr) & ~B.PermissionMask) == 0;
            if (!unchanged)
            {
                for (ulong off = 0; off < size; off += page)
                {
                    model[a + off] = new Entry(oa + off, attr, a, level);
                }
            }

            a += size;
        }
    }

    private static void ModelCollapse(Dictionary<ulong, Entry> model, Stage2Geometry geo, ulong ipa, ulong end)
    {
        ulong page = geo.TableBytes;
        ulong block = geo.LevelSize(2);
        for (ulong b = (ipa + block - 1) & ~(block - 1); b + block <= end; b += block)
        {
            if (!model.TryGetValue(b, out var first) || first.LeafLevel != 3 || (first.Pa & (block - 1)) != 0)
            {
                continue;
            }

            bool ok = true;
            for (ulong off = page; off < block && ok; off += page)
            {
                ok = model.TryGetValue(b + off, out var e) && e.LeafLevel == 3 && e.Pa == first.Pa + off && e.Attr == first.Attr;
            }

            if (ok)
            {
                for (ulong off = 0; off < block; off += page)
                {
                    model[b + off] = model[b + off] with { LeafBase = b, LeafLevel = 2 };
                }
            }
        }
    }

    private static List<(ulong Base, int Level)> LeavesTouching(Dictionary<ulong, Entry> model, Stage2Geometry geo, ulong ipa, ulong end)
    {
        var leaves = new HashSet<(ulong, int)>();
        for (ulong p = ipa; p < end; p += geo.TableBytes)
        {
            if (model.TryGetValue(p, out var e))
            {
                leaves.Add((e.LeafBase, e.LeafLevel));
            }
        }

        return [.. leaves];
    }

    private static void RemoveLeaf(Dictionary<ulong, Entry> model, Stage2Geometry geo, (ulong Base, int Level) leaf)
    {
        for (ulong p = leaf.Base; p < leaf.Base + geo.LevelSize(leaf.Level); p += geo.TableBytes)
        {
            model.Remove(p);
        }
    }

    private static void UpdateLeaves(Dictionary<ulong, Entry> model, Stage2Geometry geo, ulong ipa, ulong end, Func<Entry, Entry> f)
    {
        foreach (var leaf in LeavesTouching(model, geo, ipa, end))
        {
            for (ulong p = leaf.Base; p < leaf.Base + geo.LevelSize(leaf.Level); p += geo.TableBytes)
            {
                model[p] = f(model[p]);
            }
        }
    }

    private static void Compare(Stage2PageTable t, Dictionary<ulong, Entry> model, Stage2Geometry geo, ulong windowBase, ulong windowSize, Op op)
    {
        ulong page = geo.TableBytes;
        ulong addrMask = S2Descriptor.AddressFieldMask(geo.Granule, geo.AddressFormat);
        var actual = new Dictionary<ulong, Entry>();
        foreach (var leaf in t.CollectLeaves(windowBase, windowSize))
        {
            ulong size = geo.LevelSize(leaf.Level);
            ulong oa = leaf.Descriptor.LeafOutputAddress(geo.Granule, leaf.Level, geo.AddressFormat);
            ulong attr = leaf.Descriptor.Raw & ~addrMask & ~3UL;
            for (ulong off = 0; off < size; off += page)
            {
                actual[leaf.Ipa + off] = new Entry(oa + off, attr, leaf.Ipa, leaf.Level);
            }
        }

        foreach (var (p, e) in model)
        {
            Assert.True(actual.TryGetValue(p, out var a), $"after {op}: page 0x{p:x} missing from the tables");
            Assert.True(e == a, $"after {op}: page 0x{p:x}: model {e}, tables {a}");
        }

        Assert.True(actual.Count == model.Count, $"after {op}: tables map {actual.Count} pages, the model {model.Count}");

        // Spot-check the hardware walk against the model.
        for (ulong p = windowBase; p < windowBase + windowSize; p += page * 97)
        {
            var r = t.Translate(p + 8, S2AccessKind.Read, useTlb: false);
            if (model.TryGetValue(p, out var e) && (e.Attr & B.Af) != 0 && (e.Attr & B.S2ApRead) != 0)
            {
                Assert.False(r.IsFault, $"after {op}: 0x{p:x} faults: {r}");
                Assert.Equal(e.Pa + 8, r.Pa);
            }
            else if (!model.ContainsKey(p))
            {
                Assert.Equal(S2FaultKind.Translation, r.Fault.Kind);
            }
        }
    }
}
