using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Vmm;

namespace S2Lab.Linux.Tests;

/// <summary>
/// The VMM on real KVM, through the same seams the model implements: two VMs in this one process (the source and the
/// incoming destination), memslots, a guest that stores and loads through real code, and a dirty-logged pre-copy
/// migration. Skipped with <see cref="RealKvm"/>'s reason where /dev/kvm is missing.
/// </summary>
public class RealKvmVmmTests
{
    private const ulong Page = 4096;
    private const ulong RamSize = 2UL << 20;
    private const ulong CodeIpa = 0x1000; // RAM page 1: below 1 MiB for x86_64 real mode

    /// <summary>Records the pages the destination VMM writes (what the migration sent with data).</summary>
    private sealed class RecordingAddressSpace(IHostAddressSpace inner) : IHostAddressSpace
    {
        public List<ulong> Written { get; } = [];

        public KvmResult<Hva> MapAnonymous(ulong size, Prot prot, string name) => inner.MapAnonymous(size, prot, name);

        public KvmResult<Hva> MapAnonymousFixed(Hva at, ulong size, Prot prot, string name) => inner.MapAnonymousFixed(at, size, prot, name);

        public KvmResult<Hva> MapHugetlb(ulong size, ulong hugePageSize, Prot prot, string name) => inner.MapHugetlb(size, hugePageSize, prot, name);

        public KvmResult<Hva> MapDeviceRegion(VfioDevice device, in VfioRegionInfo region, Prot prot) => inner.MapDeviceRegion(device, region, prot);

        public KvmResult<Hva> MapFileFixed(string path, Hva at, ulong size, Prot prot) => inner.MapFileFixed(path, at, size, prot);

        public Errno Unmap(Hva start, ulong size) => inner.Unmap(start, size);

        public Errno Protect(Hva start, ulong size, Prot prot) => inner.Protect(start, size, prot);

        public Errno Residency(Hva start, ulong size, Span<byte> vector) => inner.Residency(start, size, vector);

        public Errno Read(Hva address, Span<byte> destination) => inner.Read(address, destination);

        public Errno Write(Hva address, ReadOnlySpan<byte> source)
        {
            Written.Add(address.Value);
            return inner.Write(address, source);
        }
    }

    /// <summary>
    /// A guest that, in each pre-copy round, stores to given RAM pages and loads one word back (so the code page,
    /// where the loaded value lands, is guest-dirtied every round), then checks everything on the destination.
    /// </summary>
    private sealed class StoringGuest(IReadOnlyList<int[]> pagesPerRound, RecordingAddressSpace destination) : IMigrationGuest
    {
        public Dictionary<ulong, ulong> Expected { get; } = [];

        public List<HashSet<ulong>> WrittenPerRound { get; } = [];

        public List<HashSet<ulong>> SentPerRound { get; } = [];

        public byte[] SourceAfterLastRound { get; } = new byte[RamSize];

        public IReadOnlyList<ulong> LoadedOnDestination { get; private set; } = [];

        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            var ram = source.Region("ram");
            // What this round sent before the guest ran: the destination's writes since the last call.
            SentPerRound.Add(TakeSent());
            var pages = round <= pagesPerRound.Count ? pagesPerRound[round - 1] : [];
            var ops = new List<GuestOp>();
            foreach (var p in pages)
            {
                var ipa = (ulong)p * Page + 8;
                var value = ((ulong)round << 56) | ((ulong)p << 16) | 0xA5;
                ops.Add(GuestOp.Store(ipa, value));
                Expected[ipa] = value;
            }

            ops.Add(GuestOp.Load((ulong)(pages.Length > 0 ? pages[0] : 2) * Page + 8));
            WrittenPerRound.Add(pages.Select(p => (ulong)p).ToHashSet());
            Run(source, ops);
            Assert.Equal(Errno.None, source.Host.Memory.Read(new Hva(ram.Hva), SourceAfterLastRound));
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination)
        {
            SentPerRound.Add(TakeSent());
            var dest = new byte[RamSize];
            Assert.Equal(Errno.None, destination.Host.Memory.Read(new Hva(destination.Region("ram").Hva), dest));
            if (!dest.AsSpan().SequenceEqual(SourceAfterLastRound))
                return new GuestResumeReport(false, "the destination's RAM differs from the source's");
            var order = Expected.Keys.Order().ToList();
            Run(destination, order.Select(ipa => GuestOp.Load(ipa)).ToList());
            LoadedOnDestination = destination.Host.Guest.LoadedValues(destination.Vcpus[0]);
            return new GuestResumeReport(true, "");
        }

        /// <summary>The addresses the destination VMM wrote since the last call.</summary>
        private HashSet<ulong> TakeSent()
        {
            var sent = destination.Written.ToHashSet();
            destination.Written.Clear();
            return sent;
        }

        private static void Run(VirtualMachine vm, List<GuestOp> ops)
        {
            var vcpu = vm.Vcpus[0];
            var ram = vm.Region("ram");
            Assert.Equal(Errno.None, vm.Host.Guest.Load(vcpu, new Hva(ram.Hva + CodeIpa), CodeIpa, new GuestProgram(ops)));
            var exit = vcpu.Run();
            Assert.True(exit.IsOk, $"KVM_RUN failed with {exit.Error}");
            Assert.Equal(vm.Host.Guest.EndExit, exit.Value.Reason);
        }
    }

    [KvmFact]
    public void Start_memslots_and_a_dirty_logged_migration_between_two_VMs_in_one_process()
    {
        using var kvm = RealKvm.Open();
        var memory = new LinuxAddressSpace();
        var loader = new LinuxGuestLoader(memory, kvm.Arch);
        var source = new VmmHost("real", kvm, memory, new LinuxVfioHost(), loader);
        var recording = new RecordingAddressSpace(memory);
        var destination = new VmmHost("real", kvm, recording, new LinuxVfioHost(), loader);
        var config = new VmConfig("vm", 40, 1, [new RegionConfig("ram", 0, RamSize, false, new AnonymousRam())]);

        var start = Vmm.Vmm.Start(source, config, VmmPolicy.TrustKernel);
        Assert.Equal(StartOutcome.Started, start.Outcome);
        Assert.Equal(RegionOutcome.Created, start.Regions.Single().Outcome);
        var vm = start.Vm!;
        // Guest stores before the migration starts: the first round sends them (resident pages).
        var rounds = new[] { new[] { 3, 4, 100 }, [5, 300], [3, 511], [7] };
        var guest = new StoringGuest(rounds, recording);
        var report = Migration.Migrate(vm, destination, VmmPolicy.TrustKernel, guest, new MigrationOptions(MaxRounds: 4, StopCopyPages: 0));

        Assert.Equal(MigrationOutcome.Succeeded, report.Outcome);
        Assert.True(vm.IsDestroyed);
        var destVm = report.DestinationVm!;
        var destRam = destVm.Region("ram").Hva;
        ulong PageOf(ulong hva) => (hva - destRam) / Page;
        const ulong codePage = CodeIpa / Page;
        // SentPerRound[0] is the first round (everything resident); [r] for r >= 1 is what round r+1 (or, last, the
        // stop-and-copy) sent: every page the guest wrote in round r, and nothing else but the code page.
        Assert.Equal(rounds.Length + 1, guest.SentPerRound.Count);
        for (int r = 1; r < guest.SentPerRound.Count; r++)
        {
            var sent = guest.SentPerRound[r].Select(PageOf).ToHashSet();
            var wrote = guest.WrittenPerRound[r - 1];
            Assert.True(wrote.IsSubsetOf(sent), $"round {r + 1}: the guest wrote pages {string.Join(",", wrote)} in round {r}, sent {string.Join(",", sent)}");
            Assert.True(sent.IsSubsetOf(wrote.Append(codePage)), $"round {r + 1}: sent {string.Join(",", sent)}, but the guest wrote only {string.Join(",", wrote)} (code page {codePage})");
        }

        Assert.Equal(5, report.Rounds.Count); // four pre-copy rounds and the stop-and-copy (round 0)
        var expected = guest.Expected.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToList();
        Assert.Equal(expected, guest.LoadedOnDestination);
        destVm.Dispose();
    }

    [KvmFact]
    public void The_guest_loader_runs_stores_and_loads_on_a_real_vcpu()
    {
        using var kvm = RealKvm.Open();
        var memory = new LinuxAddressSpace();
        var host = new VmmHost("real", kvm, memory, new LinuxVfioHost(), new LinuxGuestLoader(memory, kvm.Arch));
        var vm = Vmm.Vmm.Start(host, new VmConfig("vm", 40, 1, [new RegionConfig("ram", 0, RamSize, false, new AnonymousRam())]), VmmPolicy.TrustKernel).Vm!;
        var ram = vm.Region("ram").Hva;
        Assert.Equal(Errno.None, memory.Write(new Hva(ram + (9 * Page)), BitConverter.GetBytes(0x1122_3344_5566_7788UL)));
        var program = new GuestProgram([GuestOp.Store(0x20_0000 - 8, 0xDEAD_BEEF_0BAD_F00D), GuestOp.Load(9 * Page), GuestOp.Load(0x20_0000 - 8)]);
        Assert.Equal(Errno.None, host.Guest.Load(vm.Vcpus[0], new Hva(ram + CodeIpa), CodeIpa, program));
        var exit = vm.Vcpus[0].Run();
        Assert.True(exit.IsOk, $"KVM_RUN failed with {exit.Error}");
        Assert.Equal(host.Guest.EndExit, exit.Value.Reason);
        Assert.Equal([0x1122_3344_5566_7788UL, 0xDEAD_BEEF_0BAD_F00D], host.Guest.LoadedValues(vm.Vcpus[0]));
        var stored = new byte[8];
        Assert.Equal(Errno.None, memory.Read(new Hva(ram + 0x20_0000 - 8), stored));
        Assert.Equal(0xDEAD_BEEF_0BAD_F00DUL, BitConverter.ToUInt64(stored));
        Assert.Equal(Errno.EINVAL, host.Guest.Load(vm.Vcpus[0], new Hva(ram + CodeIpa), CodeIpa, new GuestProgram([GuestOp.Fetch(0x3000)])));
        vm.Dispose();
    }
}
