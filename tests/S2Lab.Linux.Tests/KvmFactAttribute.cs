using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux.Tests;

/// <summary>Whether this machine has a KVM the tests can open, and if not, why.</summary>
public static class RealKvm
{
    private static readonly Lazy<string?> Reason = new(() =>
    {
        if (!OperatingSystem.IsLinux())
            return "not a Linux host";
        var kvm = LinuxKvmSystem.Open();
        if (!kvm.IsOk)
        {
            return kvm.Error switch
            {
                Errno.ENOENT => $"{LinuxKvmSystem.DefaultPath} does not exist",
                Errno.EACCES or Errno.EPERM => $"{LinuxKvmSystem.DefaultPath} is not accessible (permission denied)",
                Errno.EOPNOTSUPP => "the machine's architecture is not x86_64 or aarch64",
                var e => $"{LinuxKvmSystem.DefaultPath} cannot be opened ({e})",
            };
        }
        using (kvm.Value)
        {
            var vm = kvm.Value.CreateVm();
            if (!vm.IsOk)
                return $"{LinuxKvmSystem.DefaultPath} opens but KVM_CREATE_VM fails ({vm.Error})";
            vm.Value.Dispose();
        }
        return null;
    });

    /// <summary>Null when /dev/kvm works; otherwise the reason the real-KVM tests skip.</summary>
    public static string? UnavailableReason => Reason.Value;

    /// <summary>Opens /dev/kvm (only call from a <see cref="KvmFactAttribute"/> test).</summary>
    public static LinuxKvmSystem Open() => LinuxKvmSystem.Open().Value;
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

/// <summary>A theory that needs a usable /dev/kvm; skipped with the reason where there is none.</summary>
public sealed class KvmTheoryAttribute : TheoryAttribute
{
    public KvmTheoryAttribute()
    {
        if (RealKvm.UnavailableReason is { } why)
            Skip = $"needs a usable KVM: {why}";
    }
}
