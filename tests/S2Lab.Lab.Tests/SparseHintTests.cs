using CsCheck;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Drivers;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>
/// docs/architecture.md, "Deviations from the issue": <see cref="ISparseAddressSpace"/> is a speed-up the model offers
/// and real userspace lacks. It may never change a migration's result: with the hint and without it (the same model
/// address space behind a wrapper that hides it), the destination holds the same bytes and the reports agree.
/// </summary>
public class SparseHintTests
{
    private const ulong Page = 4096;
    private const ulong RamGpa = 0x4000_0000, RamSize = 2UL << 20;
    private const ulong UsememGpa = 0x40_0000_0000, UsememSize = 4UL << 20;

    /// <summary>The model's address space without its sparse hint: what a real VMM would have.</summary>
    private sealed class Dense(IHostAddressSpace inner) : IHostAddressSpace
    {
        public KvmResult<Hva> MapAnonymous(ulong size, Prot prot, string name) => inner.MapAnonymous(size, prot, name);

        public KvmResult<Hva> MapAnonymousFixed(Hva at, ulong size, Prot prot, string name) => inner.MapAnonymousFixed(at, size, prot, name);

        public KvmResult<Hva> MapHugetlb(ulong size, ulong hugePageSize, Prot prot, string name) => inner.MapHugetlb(size, hugePageSize, prot, name);

        public KvmResult<Hva> MapDeviceRegion(VfioDevice device, in VfioRegionInfo region, Prot prot) => inner.MapDeviceRegion(device, region, prot);

        public KvmResult<Hva> MapFileFixed(string path, Hva at, ulong size, Prot prot) => inner.MapFileFixed(path, at, size, prot);

        public Errno Unmap(Hva start, ulong size) => inner.Unmap(start, size);

        public Errno Protect(Hva start, ulong size, Prot prot) => inner.Protect(start, size, prot);

        public Errno Residency(Hva start, ulong size, Span<byte> vector) => inner.Residency(start, size, vector);

        public Errno Read(Hva address, Span<byte> destination) => inner.Read(address, destination);

        public Errno Write(Hva address, ReadOnlySpan<byte> source) => inner.Write(address, source);
    }

    private sealed class IdleGuest : IMigrationGuest
    {
        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination) => new(true, "");
    }

    /// <summary>One migration of a RAM + usemem VM; the destination's bytes and the device copy, or the failure.</summary>
    private static (MigrationOutcome Outcome, string Copies, byte[] Ram, byte[] Usemem) Migrate(
        bool sparse, (bool Usemem, ulong Offset, ulong Value)[] guestWrites, (ulong Offset, byte Value)[] staleDest, int? unreadablePage)
    {
        (VmmHost Vmm, NvGraceGpu Gpu, Host Host) NewHost(string name)
        {
            var h = new Host(name, CpuPresets.Get("neoverse-v2").Model, KvmDesigns.Create("linux-6.9"));
            var gpu = new NvGraceGpu(h, "gpu0", new NvGraceGpuConfig(NvGraceGpuModel.GB200, UsememSize, MemblkSize: UsememSize));
            var vfio = new ModelVfioHost().Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, NvGraceGpu.UsememRegionIndex, gpu.Usemem.Size, p => gpu.MmapUsemem(p));
            var p = h.CreateProcess("vmm");
            var host = ModelVmm.Host(name, p, h.OpenKvm(p), vfio);
            return (sparse ? host : host with { Memory = new Dense(host.Memory) }, gpu, h);
        }

        var (src, _, _) = NewHost("a");
        var (dst, dstGpu, dstHost) = NewHost("b");
        // An earlier user of the destination's GPU left data in its memory.
        var earlier = dstHost.CreateProcess("earlier-vmm");
        var scratch = dstGpu.MmapUsemem(earlier).Value;
        foreach (var (off, v) in staleDest)
            Assert.Equal(Errno.None, earlier.Mm.Write(scratch.Start + off, [v]));
        var cfg = new VmConfig("vm", 40, 1,
        [
            new RegionConfig("ram", RamGpa, RamSize, false, new AnonymousRam()),
            new RegionConfig("usemem", UsememGpa, UsememSize, false, new DeviceMemory("gpu0", "usemem")),
        ]);
        var vm = Vmm.Vmm.Start(src, cfg, VmmPolicy.TrustKernel).Vm!;
        var vcpu = (ModelKvmVcpu)vm.Vcpus[0];
        foreach (var (usemem, off, v) in guestWrites)
            Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Write((usemem ? UsememGpa : RamGpa) + off, 0xFF, v)).Outcome);
        if (unreadablePage is { } u)
            Assert.Equal(Errno.None, vm.Mprotect("usemem", (ulong)u * Page, Page, Prot.PROT_NONE));
        var report = Migration.Migrate(vm, dst, VmmPolicy.TrustKernel, new IdleGuest(), new MigrationOptions());
        var copies = string.Join("; ", report.DeviceCopies.Select(c => $"{c.Region} {c.Copied} {c.Failed} {c.Bytes} {c.PagesWithData}"));
        var target = report.Destination?.Vm;
        var ram = new byte[RamSize];
        var hbm = new byte[UsememSize];
        if (report.Outcome == MigrationOutcome.Succeeded)
        {
            Assert.Equal(Errno.None, dst.Memory.Read(new Hva(target!.Region("ram").Hva), ram));
            Assert.Equal(Errno.None, dst.Memory.Read(new Hva(target.Region("usemem").Hva), hbm));
        }

        return (report.Outcome, copies, ram, hbm);
    }

    [Fact]
    public void Migration_gives_the_same_bytes_with_and_without_the_sparse_hint()
    {
        var word = Gen.Select(Gen.Bool, Gen.ULong[0, (UsememSize / 8) - 1], Gen.OneOf(Gen.Const(0UL), Gen.ULong))
            .Select((u, i, v) => (u, (i * 8) % (u ? UsememSize : RamSize), v));
        var stale = Gen.Select(Gen.ULong[0, UsememSize - 1], Gen.Byte);
        // A third of the runs make one usemem page of the source VMM's mapping unreadable: both copies must fail.
        var unreadable = Gen.Int[-2 * (int)(UsememSize / Page), (int)(UsememSize / Page) - 1].Select(i => i < 0 ? null : (int?)i);
        Gen.Select(word.Array[0, 12], stale.Array[0, 6], unreadable).Sample((writes, staleDest, u) =>
        {
            var with = Migrate(true, writes, staleDest, u);
            var without = Migrate(false, writes, staleDest, u);
            Assert.Equal(with.Outcome, without.Outcome);
            Assert.Equal(with.Copies, without.Copies);
            Assert.True(with.Ram.AsSpan().SequenceEqual(without.Ram), "RAM differs");
            Assert.True(with.Usemem.AsSpan().SequenceEqual(without.Usemem), "usemem differs");
            if (u is null)
                Assert.Equal(MigrationOutcome.Succeeded, with.Outcome);
        }, iter: 12);
    }
}
