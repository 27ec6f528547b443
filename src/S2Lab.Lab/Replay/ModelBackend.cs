using S2Lab.Kernel;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Lab.Replay;

/// <summary>Builds the model's /dev/kvm for replays: a host running a kernel design, opened by a "vmm" process.</summary>
public static class ModelBackend
{
    /// <summary>The design replays use unless told otherwise.</summary>
    public const string DefaultDesign = "linux-6.17";

    /// <summary>The CPU of the model host (matters for arm64 only: IPA limit, FWB/DIC); NVIDIA Grace.</summary>
    public const string DefaultCpu = "neoverse-v2";

    /// <summary>The model KVM for <paramref name="profile"/> and <paramref name="design"/>; null with an error for an unknown design or CPU.</summary>
    public static IKvmSystem? TryCreate(KvmProfile profile, string design, out string? error, string cpu = DefaultCpu) =>
        TryCreateModel(profile, design, out error, cpu);

    /// <summary>
    /// <see cref="TryCreate"/> with the seams a replay's mmap, munmap, enable_cap, vcpu and access lines run through
    /// (<see cref="ModelReplayMappings.Host"/>).
    /// </summary>
    public static (IKvmSystem Kvm, ReplayHost Host)? TryCreateWithHost(KvmProfile profile, string design, out string? error, string cpu = DefaultCpu) =>
        TryCreateModel(profile, design, out error, cpu) is { } kvm ? (kvm, ModelReplayMappings.Host(kvm)) : null;

    private static ModelKvmSystem? TryCreateModel(KvmProfile profile, string design, out string? error, string cpu)
    {
        var d = KvmDesigns.TryCreate(design, out error);
        if (d is null)
            return null;
        try
        {
            var host = new Host("model", Arch.Cpu.CpuPresets.Get(cpu).Model, d);
            return new ModelKvmSystem(host, profile);
        }
        catch (ArgumentException e)
        {
            error = e.Message;
            return null;
        }
    }
}
