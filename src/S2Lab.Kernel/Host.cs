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
    }

    /// <summary>A host from a CPU preset name and a design spec (throws <see cref="ArgumentException"/> for unknown names).</summary>
    public static Host Create(string name, string cpuPreset, string design, ulong ramSize = 16UL << 30, int cpuCount = 8) =>
        new(name, CpuPresets.Get(cpuPreset).Model, KvmDesigns.Create(design), new PhysicalMemory(ramSize: ramSize), cpuCount);

    public string Name { get; }

    public CpuModel Cpu { get; }

    public IKvmDesign Design { get; }

    public PhysicalMemory Memory { get; }

    public int CpuCount { get; }

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
