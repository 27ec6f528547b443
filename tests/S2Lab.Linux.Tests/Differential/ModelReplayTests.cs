using S2Lab.Lab.Replay;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>
/// The kernel's recorded answers (Replays/: golden generator runs and the minimal difference replays) replayed on
/// the model. These need no /dev/kvm: they carry the real kernel's behaviour to every machine.
/// </summary>
public class ModelReplayTests
{
    [Theory]
    [MemberData(nameof(Files))]
    public void Kernel_recorded_replay_matches_the_model(string name)
    {
        var file = GoldenReplays.Load(name);
        using var model = Differential.Model(HostProfiles.ThisDevelopmentHost);
        var mismatches = GoldenReplays.Mismatches(ReplayRunner.Run(model, file.Ops), "model");
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} mismatch(es); the first (later ones may follow from it):\n" + string.Join("\n", mismatches.Take(5)));
    }

    public static TheoryData<string> Files() => GoldenReplays.Files();

    /// <summary>
    /// A generated sequence is replayed from its seed alone (the differential tests print only the seed): the same
    /// seed gives the same operations, and each golden file still holds what its seed generates today.
    /// </summary>
    [Theory]
    [MemberData(nameof(GoldenSeeds))]
    public void Generator_output_is_a_function_of_the_seed_and_matches_the_golden_file(int seed)
    {
        static List<string> Text(IEnumerable<ReplayOp> ops) => ops.Select(op => ReplayWriter.Format(op with { Expected = null }, null)).ToList();
        var ops = Text(new MemslotOpGenerator(seed, GeneratorLimits.X86_64).Generate(KernelOnlyTests.GoldenOps));
        Assert.Equal(ops, Text(new MemslotOpGenerator(seed, GeneratorLimits.X86_64).Generate(KernelOnlyTests.GoldenOps)));
        Assert.NotEqual(ops, Text(new MemslotOpGenerator(seed + 100, GeneratorLimits.X86_64).Generate(KernelOnlyTests.GoldenOps)));
        Assert.Equal(ops, Text(GoldenReplays.Load($"golden{Path.DirectorySeparatorChar}x86_64-seed{seed}.jsonl").Ops));
    }

    public static TheoryData<int> GoldenSeeds() => new(KernelOnlyTests.GoldenSeeds);
}

/// <summary>Model profiles of machines whose kernel answers are recorded in Replays/.</summary>
public static class HostProfiles
{
    /// <summary>
    /// The machine the x86_64 replays were recorded on (docs/host-profile.md): Linux 6.18.44 x86_64 with the shadow
    /// MMU, so kvm_mmu_max_gfn() allows 52-bit GPAs (P1 in docs/kvm-x86-differences.md); one address space
    /// (MULTI_ADDRESS_SPACE 0); 32764 user slots; guest_memfd with MMAP | INIT_SHARED.
    /// </summary>
    public static S2Lab.Kernel.Kvm.KvmProfile ThisDevelopmentHost { get; } = S2Lab.Kernel.Kvm.KvmProfile.X86_64 with
    {
        UserMemSlots = 32764,
        AddressSpaces = 1,
        GuestMemfd = true,
        X86MaxGpaBits = 52,
    };
}
