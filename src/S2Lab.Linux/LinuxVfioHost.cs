using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IVfioHost"/> of this backend: it binds and opens no vfio device (that needs a device bound to a vfio
/// driver and an IOMMU group the tests cannot assume), so every device is absent: ENODEV, as opening a
/// /dev/vfio/devices/vfioN that does not exist fails.
/// </summary>
public sealed class LinuxVfioHost : IVfioHost
{
    /// <inheritdoc/>
    public KvmResult<VfioDevice> Open(string name) => Errno.ENODEV;
}
