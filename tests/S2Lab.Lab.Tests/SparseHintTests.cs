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

    /// <summary>A guest that, in pre-copy round 1, writes the given RAM words (zeros included: a page sent with data can become a zero page).</summary>
    private sealed class RewritingGuest((ulong Offset, ulong Value)[] round1) : IMigrationGuest
    {
        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            if (round != 1)
                return;
            var vcpu = (ModelKvmVcpu)source.Vcpus[0];
            foreach (var (off, v) in round1)
                Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Write(RamGpa + off, 0xFF, v)).Outcome);
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination) => new(true, "");
    }

    /// <summary>One migration of a RAM + usemem VM; the destination's bytes and the device copy, or the failure.</summary>
    private static (MigrationOutcome Outcome, string Copies, string Rounds, byte[] Ram, byte[] Usemem) Migrate(
        bool sparse, (bool Usemem, ulong Offset, ulong Value)[] guestWrites, (ulong Offset, byte Value)[] staleDest, int? unreadablePage,
        (ulong Offset, ulong Value)[]? round1 = null, int? unreadableRamPage = null)
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
        if (unreadableRamPage is { } ur)
            Assert.Equal(Errno.None, vm.Mprotect("ram", (ulong)ur * Page, Page, Prot.PROT_NONE));
        var report = Migration.Migrate(vm, dst, VmmPolicy.TrustKernel, new RewritingGuest(round1 ?? []), new MigrationOptions());
        var copies = string.Join("; ", report.DeviceCopies.Select(c => $"{c.Region} {c.Copied} {c.Failed} {c.Bytes} {c.PagesWithData}"));
        var rounds = string.Join("; ", report.Rounds.Select(r => $"{r.Round}: {r.PagesSent} sent, {r.ZeroPages} zero, {r.PagesDirtied} dirtied")) +
                     $" / {report.Reason} / {report.Errno}";
        var target = report.Destination?.Vm;
        var ram = new byte[RamSize];
        var hbm = new byte[UsememSize];
        if (report.Outcome == MigrationOutcome.Succeeded)
        {
            Assert.Equal(Errno.None, dst.Memory.Read(new Hva(target!.Region("ram").Hva), ram));
            Assert.Equal(Errno.None, dst.Memory.Read(new Hva(target.Region("usemem").Hva), hbm));
        }

        return (report.Outcome, copies, rounds, ram, hbm);
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
            Assert.Equal(with.Rounds, without.Rounds);
            Assert.True(with.Ram.AsSpan().SequenceEqual(without.Ram), "RAM differs");
            Assert.True(with.Usemem.AsSpan().SequenceEqual(without.Usemem), "usemem differs");
            if (u is null)
                Assert.Equal(MigrationOutcome.Succeeded, with.Outcome);
        }, iter: 12);
    }

    /// <summary>
    /// The RAM side of the same property: pages the guest wrote (some of them zeros, so a page sent with data can turn
    /// into a zero page in round 2 and must be cleared at the destination), and sometimes one RAM page the source VMM
    /// cannot read. The send reports, the failure and the bytes are the same with and without the hint.
    /// </summary>
    [Fact]
    public void RAM_pre_copy_gives_the_same_rounds_and_bytes_with_and_without_the_sparse_hint()
    {
        var word = Gen.Select(Gen.ULong[0, (RamSize / 8) - 1], Gen.OneOf(Gen.Const(0UL), Gen.ULong))
            .Select((i, v) => ((i * 8) % RamSize, v));
        var ramWrite = word.Select(w => (false, w.Item1, w.Item2));
        var unreadable = Gen.Int[-2 * (int)(RamSize / Page), (int)(RamSize / Page) - 1].Select(i => i < 0 ? null : (int?)i);
        Gen.Select(ramWrite.Array[0, 12], word.Array[0, 8], unreadable).Sample((writes, round1, u) =>
        {
            // Round 1 rewrites (often zeroes) some of the words written before.
            var rewrites = round1.Select((r, i) => i < writes.Length && i % 2 == 0 ? (writes[i].Item2, 0UL) : r).ToArray();
            var with = Migrate(true, writes, [], null, rewrites, u);
            var without = Migrate(false, writes, [], null, rewrites, u);
            Assert.Equal(without.Outcome, with.Outcome);
            Assert.Equal(without.Rounds, with.Rounds);
            Assert.True(with.Ram.AsSpan().SequenceEqual(without.Ram), "RAM differs");
            if (u is null)
                Assert.Equal(MigrationOutcome.Succeeded, with.Outcome);
        }, iter: 12);
    }
}
