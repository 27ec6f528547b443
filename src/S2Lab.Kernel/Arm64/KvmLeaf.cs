using S2Lab.Arch.Translation;

namespace S2Lab.Kernel.Arm64;

/// <summary>
/// What a stage-2 leaf means to KVM (docs/architecture.md, "one type per concept"): Arch's <see cref="S2Leaf"/> read
/// as a <c>kvm_pgtable_prot</c> and a KVM memory type, the inverse of what <c>stage2_set_prot_attr</c> wrote (rule 14).
/// </summary>
public static class KvmLeaf
{
    extension(S2Leaf leaf)
    {
        /// <summary>The MemAttr written in the descriptor (an MT_S2_* or, with FWB, MT_S2_FWB_* value).</summary>
        public byte MemAttr => leaf.Descriptor.MemAttr;

        /// <summary>
        /// The KVM memory type of the leaf, decoded from its MemAttr under the table's FWB (<see cref="KvmS2MemAttr.TypeOf"/>).
        /// KVM writes only PAGE_S2_MEMATTR values; any other value reads as Normal, as a leaf without the DEVICE or
        /// NORMAL_NC prot bit does.
        /// </summary>
        public KvmS2MemType KvmType => KvmS2MemAttr.TypeOf(leaf.Descriptor.MemAttr, leaf.Fwb) ?? KvmS2MemType.Normal;

        /// <summary>The leaf's kvm_pgtable_prot: R/W/X as Linux reads them (X = XN[1] clear) plus DEVICE or NORMAL_NC.</summary>
        public KvmPgtableProt KvmProt =>
            (KvmPgtableProt)(ulong)(leaf.Descriptor.Permissions & S2Permissions.All) | leaf.KvmType switch
            {
                KvmS2MemType.DeviceNGnRE => KvmPgtableProt.DEVICE,
                KvmS2MemType.NormalNc => KvmPgtableProt.NORMAL_NC,
                _ => KvmPgtableProt.None,
            };

        /// <summary>KVM_PGTABLE_PROT_R.</summary>
        public bool Readable => (leaf.Descriptor.Permissions & S2Permissions.Read) != 0;

        /// <summary>KVM_PGTABLE_PROT_W.</summary>
        public bool Writable => (leaf.Descriptor.Permissions & S2Permissions.Write) != 0;

        /// <summary>KVM_PGTABLE_PROT_X.</summary>
        public bool Executable => (leaf.Descriptor.Permissions & S2Permissions.Execute) != 0;

        /// <summary>The leaf as KVM's decision text shows it: range, PA, level, kvm_pgtable_prot and MemAttr.</summary>
        public string KvmText() =>
            $"IPA [{leaf.Ipa:x}-{leaf.Ipa + leaf.Size:x}) -> PA {leaf.Pa:x} L{leaf.Level} {leaf.KvmProt} MemAttr=0x{leaf.Descriptor.MemAttr:X}";
    }
}
