using S2Lab.Arch.Translation;
using S2Lab.Kernel.Arm64;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Events;
using S2Lab.Kernel.Mm;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Tests;

/// <summary>
/// <see cref="KernelEventLog.LeafAt"/>: the stage-2 leaf a report shows for an IPA comes from the kernel's events
/// (Stage2Written, MemoryAccessed), not from a second walk of the table (docs/architecture.md, step 5).
/// </summary>
public class KernelEventLogLeafTests
{
    private const ulong Block = 2UL << 20;

    private static S2Leaf Leaf(ulong ipa, int level, KvmS2MemType type) =>
        new(ipa, S2Descriptor.Leaf(0x8000_0000 + ipa, level, new S2LeafAttributes(KvmS2MemAttr.PageS2MemAttr(type, true), S2Permissions.Read)), level, fwb: true);

    private static Stage2Written Map(long seq, S2Leaf leaf, int vm = 1) =>
        new(seq, "h", vm, Stage2WriteKind.Map, leaf.Ipa, leaf.Size, leaf, true);

    [Fact]
    public void A_mapped_block_covers_every_IPA_in_it_and_no_other_VM_sees_it()
    {
        var log = KernelEventLog.Detached(new PhysicalMemory(ramSize: 1UL << 30));
        log.On(Map(1, Leaf(0x4000_0000, 2, KvmS2MemType.Normal)));
        Assert.Equal(Block, log.LeafAt(1, 0x4000_0000 + Block - 8)!.Value.Size);
        Assert.Null(log.LeafAt(1, 0x4000_0000 + Block));
        Assert.Null(log.LeafAt(2, 0x4000_0000));
    }

    [Fact]
    public void An_unmap_of_part_of_a_block_forgets_the_block_and_a_later_page_wins_over_an_older_block()
    {
        var log = KernelEventLog.Detached(new PhysicalMemory(ramSize: 1UL << 30));
        log.On(Map(1, Leaf(0x4000_0000, 2, KvmS2MemType.Normal)));
        log.On(new Stage2Written(2, "h", 1, Stage2WriteKind.Unmap, 0x4001_0000, 0x1000, null, true));
        Assert.Null(log.LeafAt(1, 0x4000_0000)); // the unmap walker clears the whole block leaf

        log.On(Map(3, Leaf(0x4000_0000, 2, KvmS2MemType.Normal)));
        log.On(Map(4, Leaf(0x4000_1000, 3, KvmS2MemType.NormalNc)));
        Assert.Equal(KvmS2MemType.NormalNc, log.LeafAt(1, 0x4000_1008)!.Value.KvmType);
        Assert.Equal(KvmS2MemType.Normal, log.LeafAt(1, 0x4000_2000)!.Value.KvmType);
    }

    /// <summary>The facts of the fault that mapped a usemem block: a cacheable VM_PFNMAP over memory outside the linear map.</summary>
    private static readonly FaultFacts UsememFacts = FaultFacts.None with
    {
        Vma = "usemem",
        VmaFlags = VmFlags.VM_PFNMAP,
        VmaCacheable = true,
        Pfn = 0x8_4000_0,
        MapMemory = false,
        Type = KvmS2MemType.Normal,
        MappingSize = Block,
    };

    private static MemoryAccessed Access(long seq, S2Leaf leaf, ulong ipa) =>
        new(seq, "h", 1, "vm1/vcpu0", 0, S2AccessKind.Read, ipa, leaf.Translate(ipa), leaf, null, null, Array.Empty<byte>());

    /// <summary>The log with a block mapped by a fault that saw <see cref="UsememFacts"/>.</summary>
    private static (KernelEventLog Log, S2Leaf Block) MappedBlock()
    {
        var log = KernelEventLog.Detached(new PhysicalMemory(ramSize: 1UL << 30));
        var block = Leaf(0x4000_0000, 2, KvmS2MemType.Normal);
        log.On(new FaultDecided(1, "h", 1, 0, block.Ipa, S2AccessKind.Read, DecisionStage.Stage2, 0, "map", UsememFacts));
        log.On(Map(2, block));
        return (log, block);
    }

    [Fact]
    public void An_access_through_a_mapped_block_is_judged_with_the_facts_of_the_fault_that_mapped_it()
    {
        var (log, block) = MappedBlock();
        Assert.Equal(UsememFacts, log.HostFacts(Access(3, block, block.Ipa + 0x1_0008)));
        // An unmap next to the block leaves it and its facts.
        log.On(new Stage2Written(4, "h", 1, Stage2WriteKind.Unmap, block.Ipa + Block, 0x1000, null, true));
        Assert.NotNull(log.LeafAt(1, block.Ipa));
        Assert.Equal(UsememFacts, log.HostFacts(Access(5, block, block.Ipa)));
    }

    [Fact]
    public void An_unmap_of_part_of_a_block_forgets_the_block_and_its_fault_facts_by_one_rule()
    {
        // KVM's stage2_unmap_walker clears every leaf the range overlaps, a block only partly covered too. Here the
        // range misses the block's first page, so a rule that forgot only leaves starting inside the range would keep
        // the block's facts while the leaf itself is gone.
        var (log, block) = MappedBlock();
        log.On(new Stage2Written(3, "h", 1, Stage2WriteKind.Unmap, block.Ipa + 0x1_0000, 0x1000, null, true));
        Assert.Null(log.LeafAt(1, block.Ipa));
        // An access through that leaf (one the log did not see mapped again) knows only its pfn, no VMA.
        var facts = log.HostFacts(Access(4, block, block.Ipa));
        Assert.Null(facts.Vma);
        Assert.False(facts.VmaCacheable);
        Assert.Equal(block.Translate(block.Ipa) >> PageSizes.PAGE_SHIFT, facts.Pfn);
    }
}
