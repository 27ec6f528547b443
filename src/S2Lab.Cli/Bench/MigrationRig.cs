using System.Runtime.CompilerServices;
using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Model;
using S2Lab.Vmm;

namespace S2Lab.Cli.Bench;

/// <summary>
/// Set-up shared by the migration measurements of <c>s2lab bench</c> and the BenchmarkDotNet suite (which compiles this
/// file in): two neoverse-v2 hosts with linux-6.17 (FWB and DIC), a VM of RAM and optionally a GH200's usemem, and
/// guests that write through the vCPU's allocation-free path.
/// </summary>
internal static class MigrationRig
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const ulong PageSize = 4096;

    /// <summary>Guest RAM starts at 1 GiB (QEMU virt).</summary>
    public const ulong RamGpa = GiB;

    /// <summary>A VMM on a fresh host with room for <paramref name="ram"/> of guest RAM and, if non-zero, a GH200 with <paramref name="hbm"/> of usemem.</summary>
    public static VmmHost NewHost(string name, ulong ram, ulong hbm)
    {
        var host = Host.Create(name, "neoverse-v2", "linux-6.17", ramSize: ram + (4 * GiB));
        var vfio = new ModelVfioHost();
        if (hbm != 0)
        {
            // GH200: usemem is the device memory less the 1 GiB resmem, rounded down to 512 MiB.
            var gpu = new NvGraceGpu(host, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GH200, MemorySize: hbm + GiB));
            vfio.Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, NvGraceGpu.UsememRegionIndex, gpu.Usemem.Size, p => gpu.MmapUsemem(p));
        }

        var p = host.CreateProcess("vmm");
        var model = new RigModel(host.OpenKvm(p), new ModelAddressSpace(p, vfio));
        var vmm = new VmmHost(name, model.Kvm, model.Memory, vfio, new ModelGuestLoader());
        Models.Add(vmm, model);
        return vmm;
    }

    /// <summary>The model objects behind a rig host, kept typed when <see cref="NewHost"/> makes them.</summary>
    public sealed record RigModel(ModelKvmSystem Kvm, ModelAddressSpace Memory);

    private static readonly ConditionalWeakTable<VmmHost, RigModel> Models = [];

    /// <summary>
    /// The one accessor of the model under a rig host (no seam is cast to a model type). The benches measure the model
    /// itself: its memory statistics, and the vCPU's allocation-free guest <see cref="ModelKvmVcpu.Read"/>/<see
    /// cref="ModelKvmVcpu.Write"/> path (<see cref="Vcpu"/>), which no seam offers: a guest program through
    /// <c>IGuestLoader</c> and KVM_RUN allocates its requests and results.
    /// </summary>
    public static RigModel Model(VmmHost host) =>
        Models.TryGetValue(host, out var m) ? m : throw new InvalidOperationException($"{host.HostName} is not a rig host");

    /// <summary>The IPA of usemem: the first 512 GiB boundary after RAM.</summary>
    public static ulong HbmGpa(ulong ram) => (RamGpa + ram + (512 * GiB) - 1) & ~((512 * GiB) - 1);

    /// <summary>RAM at 1 GiB, then usemem (if any), with the IPA size that holds both.</summary>
    public static VmConfig Config(ulong ram, ulong hbm)
    {
        var regions = new List<RegionConfig> { new("ram", RamGpa, ram, false, new AnonymousRam()) };
        var top = RamGpa + ram;
        if (hbm != 0)
        {
            regions.Add(new RegionConfig("usemem", HbmGpa(ram), hbm, false, new DeviceMemory("gpu0", "usemem")));
            top = HbmGpa(ram) + hbm;
        }

        var bits = 40;
        while (1UL << bits < top)
            bits++;
        return new VmConfig("bench", bits, 1, regions);
    }

    /// <summary>Starts the VM on <paramref name="host"/> or throws.</summary>
    public static VirtualMachine Start(VmmHost host, VmConfig config)
    {
        var r = Vmm.Vmm.Start(host, config, VmmPolicy.TrustKernel);
        return r.Vm ?? throw new InvalidOperationException($"start failed: {r.Reason}");
    }

    /// <summary>vCPU 0 of <paramref name="vm"/> as the model's vCPU, found through <see cref="Model"/>.</summary>
    public static ModelKvmVcpu Vcpu(VirtualMachine vm) =>
        Model(vm.Host).Kvm.Vms.Single(v => ReferenceEquals(v, vm.Kvm)).Vcpus.Single(c => c.Id == 0);

    /// <summary>The value the guest writes at page <paramref name="page"/> in round <paramref name="round"/> (never zero).</summary>
    public static ulong Value(ulong page, int round) => 0x5EED_0000_0000_0000UL | ((ulong)(uint)round << 32) | (uint)page;

    /// <summary>Writes one 8-byte value at offset 8 of each given page (stride <paramref name="stride"/> pages from <paramref name="first"/>).</summary>
    public static void WritePages(ModelKvmVcpu vcpu, ulong gpa, ulong first, ulong count, ulong stride, int round)
    {
        Span<byte> v = stackalloc byte[8];
        for (ulong i = 0; i < count; i++)
        {
            var page = first + (i * stride);
            BitConverter.TryWriteBytes(v, Value(page, round));
            var s = vcpu.Write(gpa + (page * PageSize) + 8, v);
            if (!s.Completed)
                throw new InvalidOperationException($"guest write at page {page}: {s}");
        }
    }

    /// <summary>Reads page values back on the destination; throws on the first difference.</summary>
    public static void Verify(ModelKvmVcpu vcpu, ulong gpa, ulong first, ulong count, ulong stride, int round)
    {
        Span<byte> v = stackalloc byte[8];
        for (ulong i = 0; i < count; i++)
        {
            var page = first + (i * stride);
            var s = vcpu.Read(gpa + (page * PageSize) + 8, v);
            if (!s.Completed || BitConverter.ToUInt64(v) != Value(page, round))
                throw new InvalidOperationException($"page {page} did not arrive: {s}, 0x{BitConverter.ToUInt64(v):x}");
        }
    }

    /// <summary>A guest that rewrites <paramref name="pages"/> RAM pages (every <paramref name="stride"/>-th) in each of the first <paramref name="rounds"/> pre-copy rounds.</summary>
    public sealed class DirtyingGuest(ulong pages, ulong stride, int rounds) : IMigrationGuest
    {
        /// <summary>Called after each round's writes (e.g. to sample memory).</summary>
        public Action<int>? AfterRound { get; init; }

        /// <summary>The last round that wrote (0: none).</summary>
        public int LastRound { get; private set; }

        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            if (round <= rounds)
            {
                WritePages(Vcpu(source), RamGpa, 0, pages, stride, round);
                LastRound = round;
            }

            AfterRound?.Invoke(round);
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination) => new(true, "");
    }

    /// <summary>Migrates or throws unless it succeeded.</summary>
    public static VirtualMachine Migrate(VirtualMachine vm, VmmHost destination, IMigrationGuest guest, MigrationOptions options)
    {
        var report = Migration.Migrate(vm, destination, VmmPolicy.TrustKernel, guest, options);
        if (report.Outcome != MigrationOutcome.Succeeded)
            throw new InvalidOperationException($"migration {report.Outcome}: {report.Reason}");
        return report.DestinationVm!;
    }
}
