using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>One operation where the model and the kernel disagree, with a minimal replay that reproduces it.</summary>
public sealed record Difference(int Seed, ReplayOp Op, Errno Kernel, Errno Model, IReadOnlyList<ReplayOp> Repro)
{
    public override string ToString() =>
        $"seed {Seed}: {ReplayWriter.Format(Op, null)} -> kernel {ErrnoText.Format(Kernel)}, model {ErrnoText.Format(Model)} (repro: {Repro.Count} ops)";
}

/// <summary>Runs operation sequences on the model and on the kernel and compares every result.</summary>
public static class Differential
{
    /// <summary>
    /// The model profile for this host: x86_64 with the limits the kernel reports (KVM_CAP_NR_MEMSLOTS,
    /// KVM_CAP_MULTI_ADDRESS_SPACE, the measured GPA limit, guest_memfd support).
    /// </summary>
    public static KvmProfile HostProfile(LinuxKvmSystem kvm)
    {
        var probe = KvmProbe.Probe(kvm);
        var baseProfile = kvm.Arch == KvmArch.X86_64 ? KvmProfile.X86_64 : KvmProfile.Arm64;
        var asIds = probe.Cap(KvmCap.MULTI_ADDRESS_SPACE) is { IsOk: true, Value: > 0 } a ? (int)a.Value : 1;
        return baseProfile with
        {
            UserMemSlots = (int)probe.Cap(KvmCap.NR_MEMSLOTS)!.Value.Value,
            AddressSpaces = asIds,
            GuestMemfd = probe.Cap(KvmCap.GUEST_MEMFD) is { IsOk: true, Value: > 0 },
            X86MaxGpaBits = probe.Memslots?.MaxGpaBits ?? baseProfile.X86MaxGpaBits,
        };
    }

    public static GeneratorLimits Limits(KvmProfile p) =>
        new((uint)p.UserMemSlots, (uint)p.AddressSpaces, p.UserAddressLimit, p.Arch == KvmArch.X86_64 ? p.X86MaxGpaBits : 40);

    public static IKvmSystem Model(KvmProfile profile, string design = ModelBackend.DefaultDesign) =>
        ModelBackend.TryCreate(profile, design, out var error) ?? throw new InvalidOperationException(error);

    /// <summary>Index of the first operation whose results differ, or -1.</summary>
    public static int FirstDifference(IReadOnlyList<ReplayStep> kernel, IReadOnlyList<ReplayStep> model)
    {
        for (var i = 0; i < kernel.Count; i++)
        {
            if (kernel[i].Result != model[i].Result)
                return i;
        }
        return -1;
    }

    /// <summary>Runs <paramref name="ops"/> on both; the first difference (minimised) or null.</summary>
    public static Difference? Compare(int seed, IReadOnlyList<ReplayOp> ops, IKvmSystem kernel, Func<IKvmSystem> model)
    {
        var k = ReplayRunner.Run(kernel, ops);
        IReadOnlyList<ReplayStep> m;
        using (var mk = model())
            m = ReplayRunner.Run(mk, ops);
        var i = FirstDifference(k, m);
        if (i < 0)
            return null;
        var repro = Minimise(ops.Take(i + 1).ToList(), kernel, model);
        return new Difference(seed, ops[i], k[i].Result, m[i].Result, repro);
    }

    /// <summary>
    /// Greedy minimisation: drops operations (never the last, the first create_vm, or a create_gmem/create_vm that
    /// handles depend on) while the last operation still differs the same way.
    /// </summary>
    public static IReadOnlyList<ReplayOp> Minimise(List<ReplayOp> ops, IKvmSystem kernel, Func<IKvmSystem> model)
    {
        (Errno K, Errno M) Last(List<ReplayOp> list)
        {
            var k = ReplayRunner.Run(kernel, list)[^1].Result;
            using var mk = model();
            return (k, ReplayRunner.Run(mk, list)[^1].Result);
        }
        var target = Last(ops);
        for (var i = ops.Count - 2; i >= 1; i--)
        {
            if (ops[i] is CreateGmemOp or CreateVmOp)
                continue;
            var candidate = ops.Where((_, j) => j != i).ToList();
            if (Last(candidate) == target)
                ops = candidate;
        }
        // Then drop unused create_gmem lines (renumbering handles) and create_vm lines that nothing depends on.
        for (var i = ops.Count - 2; i >= 1; i--)
        {
            if (ops[i] is not (CreateGmemOp or CreateVmOp))
                continue;
            var candidate = RemoveWithRenumber(ops, i);
            if (candidate is not null && Last(candidate) == target)
                ops = candidate;
        }
        return Renumber(ops);
    }

    private static List<ReplayOp>? RemoveWithRenumber(List<ReplayOp> ops, int index)
    {
        if (ops[index] is CreateVmOp)
            return ops.Where((_, j) => j != index).ToList();
        var handle = ops.Take(index).Count(o => o is CreateGmemOp);
        var result = new List<ReplayOp>();
        for (var j = 0; j < ops.Count; j++)
        {
            if (j == index)
                continue;
            if (ops[j] is SetRegionOp s && s.Gmem >= handle)
            {
                if (s.Gmem == handle && (s.Flags & 4) != 0)
                    return null; // still used
                result.Add(s with { Gmem = s.Gmem == handle ? -1 : s.Gmem - 1 });
            }
            else
            {
                result.Add(ops[j]);
            }
        }
        return result;
    }

    private static List<ReplayOp> Renumber(List<ReplayOp> ops) => ops.Select((o, i) => o with { Line = i + 1 }).ToList();
}
