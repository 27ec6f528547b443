using System.Runtime.CompilerServices;
using B = S2Lab.Arch.Translation.S2DescriptorBits;

namespace S2Lab.Arch.Translation;

public sealed partial class Stage2PageTable
{
    /// <summary>
    /// Translates an IPA as the MMU does for a guest access: TLB lookup for this VMID (unless <paramref name="useTlb"/> is
    /// false), else a hardware table walk that fills the TLB. Faults in the architecture's priority order: Translation
    /// (invalid entry, reserved level-3 encoding, block at a level without blocks, IPA outside the IPA space at level 0),
    /// Address size (output or table address beyond the OA size), Access flag (AF = 0 without VTCR_EL2.HA; with HA the
    /// walk sets AF), Permission (S2AP, XN; with VTCR_EL2.HD a write to a DBM leaf sets S2AP[1]). A TLB hit uses the cached
    /// descriptor, so a change made without TLB invalidation is not seen until the entry is invalidated.
    /// </summary>
    /// <param name="ipa">The guest physical address.</param>
    /// <param name="access">Read, write or instruction fetch.</param>
    /// <param name="useTlb">False: always walk and leave the TLB alone.</param>
    /// <param name="el0">The access is from EL0 (matters only for XN with FEAT_XNX).</param>
    public S2TranslationResult Translate(ulong ipa, S2AccessKind access, bool el0 = false, bool useTlb = true)
    {
        if (ipa >= _geometry.IpaSpace || _destroyed)
        {
            return new S2TranslationResult(new S2Fault(S2FaultKind.Translation, 0), 0, default, 0, default, false);
        }

        if (useTlb && _tlb.TryLookup(Vmid, ipa, out S2TlbEntry hit))
        {
            var r = Complete(ipa, hit.Descriptor.Raw, hit.Level, access, el0, fromTlb: true);
            // A write to a writable-clean (DBM) leaf with HD: the hardware updates the descriptor, so it walks.
            if (!(r.Fault.Kind == S2FaultKind.Permission && access == S2AccessKind.Write && hit.Descriptor.Dbm && _geometry.Vtcr.Hd))
            {
                return r;
            }
        }

        return HardwareWalk(ipa, access, el0, useTlb);
    }

    // The leaf the last map installed: its IPA, descriptor, level and where the descriptor lives (level -1: none).
    // Cleared by every break-before-make and every table freed, so it never outlives the entry it describes.
    private ulong _installedIpa;
    private ulong _installedPte;
    private ulong _installedPtePa;
    private int _installedLevel = -1;

    private void NoteInstalled(ulong ipa, ulong pte, int level, ulong ptePa)
    {
        _installedIpa = ipa;
        _installedPte = pte;
        _installedLevel = level;
        _installedPtePa = ptePa;
    }

    /// <summary>
    /// The guest retrying an access after a fault handler mapped it: the hardware walks again and fills the TLB. When
    /// the leaf the last <see cref="Map"/> installed covers <paramref name="ipa"/> and its descriptor is still in place
    /// (one descriptor read), that is the walk's result, so it is used without walking the levels again; otherwise
    /// (a block split since, a DBM write with HD, a leaf without AF) this is <see cref="Translate"/>.
    /// </summary>
    public S2TranslationResult TranslateRetry(ulong ipa, S2AccessKind access, bool el0 = false)
    {
        int level = _installedLevel;
        if (level >= 0 && !_destroyed && ipa < _geometry.IpaSpace && (ipa & ~(_geometry.LevelSize(level) - 1)) == _installedIpa)
        {
            ulong d = _installedPte;
            bool dbmWrite = access == S2AccessKind.Write && (d & (B.S2ApWrite | B.Dbm)) == B.Dbm && _geometry.Vtcr.Hd;
            if ((d & B.Af) != 0 && !dbmWrite && _memory.PhysToVirt(_installedPtePa & ~7UL, 1)[0] == d)
            {
                _tlb.Fill(Vmid, ipa, new S2Descriptor(d), level);
                return Complete(ipa, d, level, access, el0, fromTlb: false);
            }
        }

        return Translate(ipa, access, el0);
    }

    private S2TranslationResult HardwareWalk(ulong ipa, S2AccessKind access, bool el0, bool fillTlb)
    {
        int level = _geometry.StartLevel;
        Span<ulong> table = _memory.PhysToVirt(_rootPa, _geometry.RootEntries);
        while (true)
        {
            int shift = _geometry.LevelShift(level);
            ref ulong pte = ref table[(int)((ipa >> shift) & (ulong)(table.Length - 1))];
            ulong d = pte;
            if ((d & B.Valid) == 0)
            {
                return Fault(S2FaultKind.Translation, level);
            }

            if (level < 3 && (d & B.TableOrPage) != 0)
            {
                ulong next = Follow(d);
                if (next >= _oaLimit)
                {
                    return Fault(S2FaultKind.AddressSize, level);
                }

                table = _memory.PhysToVirt(next, _geometry.EntriesPerTable);
                level++;
                continue;
            }

            if (level == 3 ? (d & B.TableOrPage) == 0 : !_geometry.BlockAllowedAtLevel(level))
            {
                return Fault(S2FaultKind.Translation, level);
            }

            if (Follow(d) >= _oaLimit)
            {
                return Fault(S2FaultKind.AddressSize, level);
            }

            if ((d & B.Af) == 0)
            {
                if (!_geometry.Vtcr.Ha)
                {
                    return Fault(S2FaultKind.AccessFlag, level);
                }

                d |= B.Af;
                pte = d;
            }

            if (access == S2AccessKind.Write && (d & (B.S2ApWrite | B.Dbm)) == B.Dbm && _geometry.Vtcr.Hd)
            {
                d |= B.S2ApWrite;
                pte = d;
            }

            if (fillTlb)
            {
                _tlb.Fill(Vmid, ipa, new S2Descriptor(d), level);
            }

            return Complete(ipa, d, level, access, el0, fromTlb: false);
        }
    }

    private static S2TranslationResult Fault(S2FaultKind kind, int level) =>
        new(new S2Fault(kind, level), 0, default, level, default, false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private S2TranslationResult Complete(ulong ipa, ulong d, int level, S2AccessKind access, bool el0, bool fromTlb)
    {
        bool allowed = access switch
        {
            S2AccessKind.Read => (d & B.S2ApRead) != 0,
            S2AccessKind.Write => (d & B.S2ApWrite) != 0,
            _ => ExecuteAllowed(d, el0),
        };
        var leaf = new S2Descriptor(d);
        S2Shareability sh = _format == S2AddressFormat.Lpa2 ? (S2Shareability)_geometry.Vtcr.Sh0 : leaf.Shareability;
        if (!allowed)
        {
            return new S2TranslationResult(new S2Fault(S2FaultKind.Permission, level), 0, leaf, level, sh, fromTlb);
        }

        ulong size = 1UL << _geometry.LevelShift(level);
        ulong pa = (Follow(d) & ~(size - 1)) | (ipa & (size - 1));
        return new S2TranslationResult(default, pa, leaf, level, sh, fromTlb);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ExecuteAllowed(ulong d, bool el0)
    {
        var xn = (S2ExecuteNever)((d & B.XnMask) >> B.XnShift);
        if (!Options.Xnx)
        {
            return (d & B.Xn1) == 0;
        }

        return xn == S2ExecuteNever.ExecuteEl1AndEl0 || (el0 ? xn == S2ExecuteNever.ExecuteEl0Only : xn == S2ExecuteNever.ExecuteEl1Only);
    }
}

public sealed partial class Stage2PageTable
{
    /// <summary>
    /// The walk for one access in words: the configuration, each descriptor read (level, table, index, address, value
    /// decoded), and the outcome (PA and attributes, or the fault). Walks the tables (no TLB, no TLB fill).
    /// </summary>
    public IReadOnlyList<string> ExplainTranslation(ulong ipa, S2AccessKind access, bool el0 = false)
    {
        var lines = new List<string> { $"IPA 0x{ipa:x}, {access}{(el0 ? " at EL0" : "")}: {_geometry}, VMID {Vmid}, VTTBR 0x{Vttbr:x}" };
        if (ipa >= _geometry.IpaSpace)
        {
            lines.Add($"the IPA is outside the {_geometry.IpaBits}-bit IPA space: Translation fault at level 0");
            return lines;
        }

        foreach (var s in WalkSteps(ipa))
        {
            int lo = _geometry.LevelShift(s.Level);
            int hi = s.Level == _geometry.StartLevel ? _geometry.IpaBits - 1 : lo + _geometry.Stride - 1;
            string table = s.Level == _geometry.StartLevel && _geometry.ConcatenatedTables > 1
                ? $"start-level table ({_geometry.ConcatenatedTables} concatenated)"
                : "table";
            lines.Add($"level {s.Level}: {table} at 0x{s.TablePa:x}, index IPA[{hi}:{lo}] = {s.Index}, " +
                      $"descriptor at 0x{s.DescriptorPa:x} = {s.Descriptor.Describe(s.Level, _granule, _format)}");
        }

        var r = Translate(ipa, access, el0, useTlb: false);
        lines.Add(r.IsFault
            ? $"result: {r.Fault} (FSC 0b{r.Fault.FaultStatusCode:b6})"
            : $"result: PA 0x{r.Pa:x}, MemAttr 0x{r.MemAttr:x} (raw; FWB {(Fwb ? "on" : "off")}), SH {r.Shareability}, {r.Permissions}");
        return lines;
    }
}
