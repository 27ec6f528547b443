using S2Lab.Arch.Caches;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Mm;

namespace S2Lab.Kernel;

/// <summary>
/// A host machine running the Linux model: a CPU (ID registers), a physical memory map (System RAM plus the device
/// ranges drivers add), the KVM design it runs, and its processes.
/// </summary>
public sealed class Host
{
    private readonly List<Process> _processes = [];
    private int _nextPid = 1000;

    /// <param name="name">Host name (e.g. "grace").</param>
    /// <param name="cpu">The CPU model; see <see cref="CpuPresets"/>.</param>
    /// <param name="design">The KVM behaviour; see <see cref="KvmDesigns"/>.</param>
    /// <param name="memory">The physical memory; default 16 GiB of System RAM at 2 GiB.</param>
    /// <param name="cpuCount">Online CPUs (KVM_CAP_NR_VCPUS).</param>
    public Host(string name, CpuModel cpu, IKvmDesign design, PhysicalMemory? memory = null, int cpuCount = 8)
    {
        Name = name;
        Cpu = cpu;
        Design = design;
        Memory = memory ?? new PhysicalMemory();
        CpuCount = cpuCount;
        // One data cache for all CPUs in front of the PoC, I-caches per CPU; IDC/DIC from CTR_EL0 (Arch/Caches/README.md).
        Caches = new CacheSystem(Memory, new CacheOptions { Idc = cpu.HasCacheIdc, Dic = cpu.HasCacheDic });
        Memory.Caches = Caches;
    }

    /// <summary>A host from a CPU preset name and a design spec (throws <see cref="ArgumentException"/> for unknown names).</summary>
    public static Host Create(string name, string cpuPreset, string design, ulong ramSize = 16UL << 30, int cpuCount = 8) =>
        new(name, CpuPresets.Get(cpuPreset).Model, KvmDesigns.Create(design), new PhysicalMemory(ramSize: ramSize), cpuCount);

    public string Name { get; }

    public CpuModel Cpu { get; }

    public IKvmDesign Design { get; }

    public PhysicalMemory Memory { get; }

    public int CpuCount { get; }

    /// <summary>
    /// The host's caches (issue 12): every access to <see cref="Memory"/> by a CPU, host or guest, goes through them
    /// with its effective attributes; devices reach them through <see cref="DeviceWrite"/>.
    /// </summary>
    public CacheSystem Caches { get; }

    /// <summary>
    /// A device writes memory (DMA): a <see cref="AccessorKind.NonCoherentDevice"/> writes the PoC around the caches, a
    /// <see cref="AccessorKind.CoherentDevice"/> also updates the lines the caches hold.
    /// </summary>
    public void DeviceWrite(Accessor device, ulong pa, ReadOnlySpan<byte> data)
    {
        if (device.Kind == AccessorKind.Cpu)
            throw new ArgumentException($"{device} is a CPU, not a device", nameof(device));
        Caches.Write(device, pa, default, data);
    }

    /// <summary>A device reads memory (DMA); see <see cref="DeviceWrite"/>.</summary>
    public void DeviceRead(Accessor device, ulong pa, Span<byte> data)
    {
        if (device.Kind == AccessorKind.Cpu)
            throw new ArgumentException($"{device} is a CPU, not a device", nameof(device));
        Caches.Read(device, pa, default, data);
    }

    public IReadOnlyList<Process> Processes => _processes;

    /// <summary>Starts a process (e.g. the VMM) with an empty address space.</summary>
    public Process CreateProcess(string name)
    {
        var p = new Process(this, _nextPid++, name);
        _processes.Add(p);
        return p;
    }

    /// <summary>
    /// Opens /dev/kvm from <paramref name="process"/> (VMs created through it use that process's mm for memslots).
    /// Same as <c>new ModelKvmSystem(this, process, profile)</c>.
    /// </summary>
    public ModelKvmSystem OpenKvm(Process process, KvmProfile? profile = null) => new(this, process, profile);

    public override string ToString() => $"{Name} ({Cpu.Name}, {Design.Name})";
}
