using S2Lab.Arch.Cpu;

namespace S2Lab.Arch.Translation;

/// <summary>
/// VTCR_EL2, the stage-2 translation control register (docs/arm-reference.md#vtcr). A raw value with typed field
/// accessors; <see cref="Validate"/> checks it against the start-level rules (docs/arm-reference.md#levels) and yields the table geometry.
/// </summary>
public readonly record struct VtcrEl2(ulong Value)
{
    public const int T0szShift = 0, Sl0Shift = 6, Irgn0Shift = 8, Orgn0Shift = 10, Sh0Shift = 12, Tg0Shift = 14, PsShift = 16;
    public const int VsBit = 19, HaBit = 21, HdBit = 22, Res1Bit = 31, DsBit = 32, Sl2Bit = 33;

    /// <summary>T0SZ [5:0]: IPA size = 64 − T0SZ.</summary>
    public int T0sz => (int)(Value & 0x3F);

    /// <summary>SL0 [7:6].</summary>
    public int Sl0 => (int)((Value >> Sl0Shift) & 3);

    /// <summary>IRGN0 [9:8].</summary>
    public int Irgn0 => (int)((Value >> Irgn0Shift) & 3);

    /// <summary>ORGN0 [11:10].</summary>
    public int Orgn0 => (int)((Value >> Orgn0Shift) & 3);

    /// <summary>SH0 [13:12].</summary>
    public int Sh0 => (int)((Value >> Sh0Shift) & 3);

    /// <summary>TG0 [15:14]: 00 4K, 01 64K, 10 16K, 11 reserved.</summary>
    public int Tg0 => (int)((Value >> Tg0Shift) & 3);

    /// <summary>PS [18:16].</summary>
    public int Ps => (int)((Value >> PsShift) & 7);

    /// <summary>VS [19]: 16-bit VMID.</summary>
    public bool Vs => Bit(VsBit);

    /// <summary>HA [21]: hardware access-flag management.</summary>
    public bool Ha => Bit(HaBit);

    /// <summary>HD [22]: hardware dirty-state management.</summary>
    public bool Hd => Bit(HdBit);

    /// <summary>DS [32]: 52-bit addresses with 4K/16K (FEAT_LPA2).</summary>
    public bool Ds => Bit(DsBit);

    /// <summary>SL2 [33]: with SL0 = 0b00, start level −1 (4K, DS = 1 only).</summary>
    public bool Sl2 => Bit(Sl2Bit);

    /// <summary>IPA size in bits, 64 − T0SZ.</summary>
    public int IpaBits => 64 - T0sz;

    /// <summary>The granule TG0 selects, or null for the reserved encoding 0b11.</summary>
    public Granule? Granule => Tg0 switch
    {
        0b00 => Translation.Granule.Size4K,
        0b01 => Translation.Granule.Size64K,
        0b10 => Translation.Granule.Size16K,
        _ => null,
    };

    /// <summary>PS as a size in bits (32..56).</summary>
    public int PsBits => Ps switch { 0 => 32, 1 => 36, 2 => 40, 3 => 42, 4 => 44, 5 => 48, 6 => 52, _ => 56 };

    private bool Bit(int n) => ((Value >> n) & 1) != 0;

    /// <summary>
    /// The start level SL0 (and SL2) encode for the granule, or null when the encoding is reserved. This is only the
    /// decoding; feature requirements (TTST, DS, PAMax) are checked by <see cref="Validate"/>.
    /// </summary>
    public int? StartLevel
    {
        get
        {
            if (Granule is not { } g)
            {
                return null;
            }

            if (Sl2)
            {
                return g == Translation.Granule.Size4K && Sl0 == 0 ? -1 : null;
            }

            return (g, Sl0) switch
            {
                (Translation.Granule.Size4K, 0) => 2,
                (Translation.Granule.Size4K, 1) => 1,
                (Translation.Granule.Size4K, 2) => 0,
                (Translation.Granule.Size4K, 3) => 3,
                (Translation.Granule.Size64K, 3) => null,
                (_, var sl0) => 3 - sl0,
            };
        }
    }

    /// <summary>Encodes a VTCR_EL2 value. <paramref name="startLevel"/> is turned into SL0/SL2 for the granule.</summary>
    public static VtcrEl2 Create(Granule granule, int ipaBits, int startLevel, int psBits = 48, bool ds = false,
        bool vmid16 = false, bool hardwareAf = false, bool hardwareDirty = false, int sh0 = 3, int orgn0 = 1, int irgn0 = 1)
    {
        int sl0;
        bool sl2 = false;
        if (granule == Translation.Granule.Size4K)
        {
            (sl0, sl2) = startLevel switch
            {
                -1 => (0, true),
                3 => (3, false),
                _ => (2 - startLevel, false),
            };
        }
        else
        {
            sl0 = 3 - startLevel;
        }

        int ps = IdAa64Mmfr0El1.EncodePaBits(psBits) ?? throw new ArgumentOutOfRangeException(nameof(psBits), psBits, "no PS encoding for this size");
        ulong v = (ulong)(64 - ipaBits) & 0x3F;
        v |= (ulong)(sl0 & 3) << Sl0Shift;
        v |= (ulong)(irgn0 & 3) << Irgn0Shift;
        v |= (ulong)(orgn0 & 3) << Orgn0Shift;
        v |= (ulong)(sh0 & 3) << Sh0Shift;
        v |= (ulong)granule.Tg0Encoding() << Tg0Shift;
        v |= (ulong)ps << PsShift;
        v |= vmid16 ? 1UL << VsBit : 0;
        v |= hardwareAf ? 1UL << HaBit : 0;
        v |= hardwareDirty ? 1UL << HdBit : 0;
        v |= 1UL << Res1Bit;
        v |= ds ? 1UL << DsBit : 0;
        v |= sl2 ? 1UL << Sl2Bit : 0;
        return new VtcrEl2(v);
    }

    /// <summary>
    /// VTCR_EL2 as Linux's <c>kvm_get_vtcr</c> builds it for a VM with <paramref name="ipaBits"/> of IPA:
    /// levels = ARM64_HW_PGTABLE_LEVELS(ipa − 4) = (ipa − 8) / (granule bits − 3), at least 2, the start level using up to
    /// 16 concatenated tables; SL0 = TGRAN_SL0_BASE − (4 − levels); SH0 Inner, IRGN0/ORGN0 WBWA, RES1 bit 31;
    /// PS from PARange (capped at 48 bits, or 52 with <paramref name="lpa2"/>); DS when LPA2 is in use.
    /// </summary>
    public static VtcrEl2 ForIpaSize(int ipaBits, int paBits = 48, Granule granule = Translation.Granule.Size4K,
        bool vmid16 = false, bool hardwareAf = false, bool lpa2 = false)
    {
        int levels = KvmLevels(ipaBits, granule);
        int startLevel = 4 - levels;
        int ps = Math.Min(paBits, lpa2 || granule == Translation.Granule.Size64K ? 52 : 48);
        return Create(granule, ipaBits, startLevel, ps, ds: lpa2 && granule != Translation.Granule.Size64K,
            vmid16: vmid16, hardwareAf: hardwareAf);
    }

    /// <summary>Linux stage2_pgtable_levels(ipa) = ARM64_HW_PGTABLE_LEVELS(ipa − 4), with kvm_get_vtcr's minimum of 2.</summary>
    public static int KvmLevels(int ipaBits, Granule granule) => Math.Max(2, (ipaBits - 8) / granule.Stride());

    /// <summary>
    /// Checks this value against the architecture (docs/arm-reference.md#levels): TG0, SL0/SL2 for the granule and the features they need,
    /// the IPA size range for the start level (levels·stride + granule + 1 ≤ IA ≤ levels·stride + granule + stride + 4,
    /// at most 16 concatenated tables), the maximum IA size (S2MinTxSZ), DS and PS. An invalid configuration is what the
    /// hardware reports as a level-0 Translation fault (S2InconsistentSL); here it is rejected with the reason.
    /// </summary>
    public VtcrValidation Validate(Stage2Features features)
    {
        if (Granule is not { } g)
        {
            return VtcrValidation.Fail("TG0 = 0b11 is reserved");
        }

        string gn = g.Name();
        if (Ds && g == Translation.Granule.Size64K)
        {
            return VtcrValidation.Fail("DS = 1 is not allowed with the 64K granule (64K uses FEAT_LPA, not LPA2)");
        }

        if (Ds && !features.Lpa2)
        {
            return VtcrValidation.Fail("DS = 1 needs FEAT_LPA2");
        }

        if (Sl2 && !(g == Translation.Granule.Size4K && Ds))
        {
            return VtcrValidation.Fail("SL2 = 1 is only valid with the 4K granule and DS = 1");
        }

        if (Sl2 && Sl0 != 0)
        {
            return VtcrValidation.Fail($"SL2 = 1 needs SL0 = 0b00 (SL0 = 0b{Sl0:b2})");
        }

        if (StartLevel is not { } start)
        {
            return VtcrValidation.Fail($"SL0 = 0b{Sl0:b2} is reserved for the {gn} granule");
        }

        if (g == Translation.Granule.Size4K && start == 3 && !features.Ttst)
        {
            return VtcrValidation.Fail("4K with SL0 = 0b11 (start level 3) needs FEAT_TTST");
        }

        if (g == Translation.Granule.Size16K && start == 0 && !Ds)
        {
            return VtcrValidation.Fail("16K with SL0 = 0b11 (start level 0) needs DS = 1");
        }

        if (g == Translation.Granule.Size4K && start == 0 && features.PaBits < 44)
        {
            return VtcrValidation.Fail($"4K start level 0 needs PAMax >= 44 (PAMax = {features.PaBits})");
        }

        if (g == Translation.Granule.Size16K && start == 1 && features.PaBits < 42)
        {
            return VtcrValidation.Fail($"16K start level 1 needs PAMax >= 42 (PAMax = {features.PaBits})");
        }

        if (g == Translation.Granule.Size64K && start == 1 && features.PaBits < 44)
        {
            return VtcrValidation.Fail($"64K start level 1 needs PAMax >= 44 (PAMax = {features.PaBits})");
        }

        int ia = IpaBits;
        int stride = g.Stride();
        int levels = 3 - start;
        int min = levels * stride + g.Shift() + 1;
        int max = levels * stride + g.Shift() + stride + 4;
        if (ia < min || ia > max)
        {
            return VtcrValidation.Fail(
                $"IPA size {ia} (T0SZ {T0sz}) is outside {min}..{max}, the range of a {gn} walk starting at level {start} " +
                "(one table up to 16 concatenated tables)");
        }

        // S2MinTxSZ: the IA size is limited by PAMax, and to 48 bits unless DS = 1 or 64K with 52-bit PA.
        int iaCap = Math.Min(features.PaBits, Ds || g == Translation.Granule.Size64K ? 52 : 48);
        if (ia > iaCap)
        {
            return VtcrValidation.Fail(
                $"IPA size {ia} exceeds the maximum {iaCap} (PAMax {features.PaBits}" +
                (Ds || g == Translation.Granule.Size64K ? ")" : "; 48 without DS)"));
        }

        if (Ps == 7)
        {
            return VtcrValidation.Fail("PS = 0b111 (56-bit) is only defined with FEAT_D128, which S2Lab does not model");
        }

        int oaBits = Math.Min(PsBits, features.PaBits);
        S2AddressFormat format = S2AddressFormat.Pa48;
        if (Ds)
        {
            format = S2AddressFormat.Lpa2;
        }
        else if (g == Translation.Granule.Size64K && oaBits == 52)
        {
            format = S2AddressFormat.Lpa64K;
        }
        else
        {
            oaBits = Math.Min(oaBits, 48);
        }

        return VtcrValidation.Ok(new Stage2Geometry(this, g, ia, start, oaBits, format));
    }
}

/// <summary>Implementation facts a VTCR_EL2 value is validated against.</summary>
/// <param name="PaBits">PAMax, from ID_AA64MMFR0_EL1.PARange.</param>
/// <param name="Ttst">FEAT_TTST (small translation tables; 4K start level 3).</param>
/// <param name="Lpa2">FEAT_LPA2 (VTCR_EL2.DS).</param>
public readonly record struct Stage2Features(int PaBits = 48, bool Ttst = false, bool Lpa2 = false)
{
    /// <summary>The features of a CPU model (PARange; TTST and LPA2 are not in the model, so false).</summary>
    public static Stage2Features From(CpuModel cpu) => new(cpu.PaBits);
}

/// <summary>The outcome of <see cref="VtcrEl2.Validate"/>: a geometry, or the reason the value is invalid.</summary>
public readonly record struct VtcrValidation(Stage2Geometry? Geometry, string? Reason)
{
    public bool IsValid => Geometry is not null;

    public static VtcrValidation Ok(Stage2Geometry g) => new(g, null);

    public static VtcrValidation Fail(string reason) => new(null, reason);

    /// <summary>The geometry; throws <see cref="ArgumentException"/> with the reason if invalid.</summary>
    public Stage2Geometry GetOrThrow() => Geometry ?? throw new ArgumentException($"invalid VTCR_EL2: {Reason}");
}
