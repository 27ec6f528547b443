using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Mm;
using S2Lab.Kernel.Model;
using S2Lab.Vmm;

namespace S2Lab.Lab.Runner;

/// <summary>The VMM's host built from the model: every seam of <see cref="VmmHost"/> implemented over one model process.</summary>
public static class ModelVmm
{
    /// <summary>
    /// A VMM host for <paramref name="process"/>: its /dev/kvm <paramref name="kvm"/>, its address space, the vfio devices
    /// of <paramref name="vfio"/> (none if null) and the model guest loader.
    /// </summary>
    public static VmmHost Host(string hostName, Process process, IKvmSystem kvm, ModelVfioHost? vfio = null)
    {
        vfio ??= new ModelVfioHost();
        return new VmmHost(hostName, kvm, new ModelAddressSpace(process, vfio), vfio, new ModelGuestLoader());
    }
}
