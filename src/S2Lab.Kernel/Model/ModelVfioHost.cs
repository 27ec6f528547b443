using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel.Model;

/// <summary>
/// <see cref="IVfioHost"/> over the model's drivers: each device is registered with its driver name and its regions
/// (struct vfio_region_info plus the driver's mmap). A vfio-pci region's offset is its index shifted by
/// VFIO_PCI_OFFSET_SHIFT (40), as vfio-pci reports it.
/// </summary>
public sealed class ModelVfioHost : IVfioHost
{
    /// <summary>VFIO_PCI_OFFSET_SHIFT.</summary>
    public const int OffsetShift = 40;

    private readonly Dictionary<string, Device> _devices = [];

    private sealed record Device(string Driver, SortedDictionary<uint, (VfioRegionInfo Info, Func<Process, KvmResult<Vma>> Mmap)> Regions);

    /// <summary>
    /// Adds region <paramref name="index"/> of <paramref name="device"/> (bound to <paramref name="driver"/>): its size
    /// and the driver's mmap of the whole region. Readable, writable and mmap-able, as vfio reports a memory BAR.
    /// </summary>
    public ModelVfioHost Add(string device, string driver, uint index, ulong size, Func<Process, KvmResult<Vma>> mmap)
    {
        if (!_devices.TryGetValue(device, out var d))
            _devices[device] = d = new Device(driver, []);
        else if (d.Driver != driver)
            throw new ArgumentException($"device {device} is bound to {d.Driver}, not {driver}");
        if (!d.Regions.TryAdd(index, (new VfioRegionInfo(index, size, (ulong)index << OffsetShift,
                VfioRegionFlags.Read | VfioRegionFlags.Write | VfioRegionFlags.Mmap), mmap)))
            throw new ArgumentException($"device {device} already has region {index}");
        return this;
    }

    /// <summary>The device's driver and regions (VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO); ENODEV if absent.</summary>
    public KvmResult<VfioDevice> Open(string name) =>
        _devices.TryGetValue(name, out var d)
            ? KvmResult<VfioDevice>.Ok(new VfioDevice(name, d.Driver, d.Regions.Values.Select(r => r.Info).ToList()))
            : Errno.ENODEV;

    internal bool TryGetMmap(string device, uint index, out VfioRegionInfo info, out Func<Process, KvmResult<Vma>> mmap)
    {
        if (_devices.TryGetValue(device, out var d) && d.Regions.TryGetValue(index, out var r))
        {
            (info, mmap) = r;
            return true;
        }

        (info, mmap) = (default, null!);
        return false;
    }
}
