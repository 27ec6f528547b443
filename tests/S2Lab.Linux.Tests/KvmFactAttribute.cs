using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux.Tests;

/// <summary>Whether this machine has a KVM the tests can open, and if not, why.</summary>
public static class RealKvm
{
    /// <summary>The device the tests open: $S2LAB_KVM_DEVICE, else /dev/kvm (point it at a missing path to check the skips).</summary>
    public static string Device { get; } = Environment.GetEnvironmentVariable("S2LAB_KVM_DEVICE") is { Length: > 0 } d ? d : LinuxKvmSystem.DefaultPath;

    private static readonly Lazy<string?> Reason = new(() =>
    {
        if (!OperatingSystem.IsLinux())
            return "not a Linux host";
        var kvm = LinuxKvmSystem.Open(Device);
        if (!kvm.IsOk)
        {
            return kvm.Error switch
            {
                Errno.ENOENT => $"{Device} does not exist",
                Errno.EACCES or Errno.EPERM => $"{Device} is not accessible (permission denied)",
                Errno.EOPNOTSUPP => "the machine's architecture is not x86_64 or aarch64",
                var e => $"{Device} cannot be opened ({e})",
            };
        }
        using (kvm.Value)
        {
            var vm = kvm.Value.CreateVm();
            if (!vm.IsOk)
                return $"{Device} opens but KVM_CREATE_VM fails ({vm.Error})";
            vm.Value.Dispose();
        }
        return null;
    });

    /// <summary>Null when /dev/kvm works; otherwise the reason the real-KVM tests skip.</summary>
    public static string? UnavailableReason => Reason.Value;

    /// <summary>uname machine of this host ("" where uname fails).</summary>
    public static string Machine => LinuxHostInfo.Read() is { IsOk: true } h ? h.Value.Machine : "";

    /// <summary>Opens /dev/kvm (only call from a <see cref="KvmFactAttribute"/> test).</summary>
    public static LinuxKvmSystem Open() => LinuxKvmSystem.Open(Device).Value;
}

/// <summary>A fact that needs a usable /dev/kvm; skipped with the reason where there is none.</summary>
public sealed class KvmFactAttribute : FactAttribute
{
    public KvmFactAttribute()
    {
        if (RealKvm.UnavailableReason is { } why)
            Skip = $"needs a usable KVM: {why}";
    }
}

/// <summary>A theory that needs a usable /dev/kvm (of one architecture, if <see cref="Arch"/> is set); skipped with the reason otherwise.</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    private string? _arch;

    public KvmTheoryAttribute()
    {
        if (RealKvm.UnavailableReason is { } why)
            Skip = $"needs a usable KVM: {why}";
    }

    /// <summary>The uname machine the test needs ("x86_64", "aarch64").</summary>
    public string? Arch
    {
        get => _arch;
        set
        {
            _arch = value;
            if (Skip is null && value is not null && RealKvm.Machine != value)
                Skip = $"needs a {value} KVM (this one runs on {RealKvm.Machine})";
        }
    }
}
