using CsCheck;
using S2Lab.Arch.Cpu;
using S2Lab.Kernel;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Designs;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;
using S2Lab.Lab.Runner;
using S2Lab.Lab.Scenarios;
using S2Lab.Vmm;

namespace S2Lab.Lab.Tests;

/// <summary>The VMM's migration: data integrity, dirty logging only on RAM (rule 6), and the outcomes.</summary>
public class MigrationTests
{
    private const ulong RamGpa = 0x4000_0000;
    private const ulong RamSize = 16UL << 20;
    private const ulong PageSize = 4096;

    private static VmmHost NewVmm(Host h)
    {
        var p = h.CreateProcess("vmm");
        return ModelVmm.Host(h.Name, p, h.OpenKvm(p));
    }

    /// <summary>A GB200 GPU's usemem region of <paramref name="size"/> on <paramref name="h"/>, offered through the model's vfio host.</summary>
    private static ModelVfioHost UsememOf(Host h, ulong size, Kernel.Drivers.NvGraceUsememMapping mapping = Kernel.Drivers.NvGraceUsememMapping.Pfnmap)
    {
        var gpu = new Kernel.Drivers.NvGraceGpu(h, "gpu0", new Kernel.Drivers.NvGraceGpuConfig(Kernel.Drivers.NvGraceGpuModel.GB200, size, MemblkSize: size,
            UsememMapping: mapping));
        return new ModelVfioHost().Add("gpu0", DeviceMemoryPolicy.NvgraceDriver, Kernel.Drivers.NvGraceGpu.UsememRegionIndex, gpu.Usemem.Size, p => gpu.MmapUsemem(p));
    }

    /// <summary>A VMM process on <paramref name="h"/> with /dev/kvm open and the devices of <paramref name="vfio"/>.</summary>
    private static VmmHost WithDevice(Host h, ModelVfioHost vfio)
    {
        var p = h.CreateProcess("vmm");
        return ModelVmm.Host(h.Name, p, h.OpenKvm(p), vfio);
    }

    /// <summary>A VM with RAM and gpu0's usemem of <paramref name="size"/> at <paramref name="gpa"/>.</summary>
    private static VmConfig UsememVm(ulong size, ulong gpa) => new("vm", 40, 1,
    [
        new RegionConfig("ram", RamGpa, RamSize, false, new AnonymousRam()),
        new RegionConfig("usemem", gpa, size, false, new DeviceMemory("gpu0", "usemem")),
    ]);

    private static Host NewHost(string name, string preset, string design = "linux-6.17") =>
        new(name, CpuPresets.Get(preset).Model, KvmDesigns.Create(design));

    /// <summary>A guest that writes given pages during given pre-copy rounds and remembers every value.</summary>
    private sealed class WritingGuest(IReadOnlyList<int[]> dirtyPerRound, Dictionary<ulong, ulong> written) : IMigrationGuest
    {
        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            if (round > dirtyPerRound.Count)
                return;
            var vcpu = (ModelKvmVcpu)source.Vcpus[0];
            foreach (var page in dirtyPerRound[round - 1])
            {
                var off = (ulong)page * PageSize + 8;
                var value = ((ulong)round << 48) | (uint)page;
                Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Write(RamGpa + off, 0xFF, value)).Outcome);
                written[off] = value;
            }
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination) => new(true, "");
    }

    /// <summary>Whatever the guest writes before and during pre-copy, the destination's RAM holds the last value of each word.</summary>
    [Fact]
    public void Every_value_the_guest_wrote_arrives_whatever_the_dirty_pattern()
    {
        var pages = Gen.Int[0, (int)(RamSize / PageSize) - 1];
        var gen = Gen.Select(pages.Array[0, 24], pages.Array[0, 24].Array[0, 5], Gen.Int[1, 6], Gen.Int[0, 8]);
        gen.Sample((before, dirty, maxRounds, threshold) =>
        {
            var src = NewHost("a", "neoverse-v2");
            var dst = NewHost("b", "neoverse-n1");
            var cfg = new VmConfig("vm", 40, 1, [new RegionConfig("ram", RamGpa, RamSize, false, new AnonymousRam())]);
            var start = Vmm.Vmm.Start(NewVmm(src), cfg, VmmPolicy.TrustKernel);
            Assert.Equal(StartOutcome.Started, start.Outcome);
            var vm = start.Vm!;
            var written = new Dictionary<ulong, ulong>();
            var vcpu = (ModelKvmVcpu)vm.Vcpus[0];
            foreach (var p in before)
            {
                var off = (ulong)p * PageSize;
                vcpu.Access(GuestAccessRequest.Write(RamGpa + off, 0xFF, 0xC0DE_0000UL | (uint)p));
                written[off] = 0xC0DE_0000UL | (uint)p;
            }

            var report = Migration.Migrate(vm, NewVmm(dst), VmmPolicy.TrustKernel, new WritingGuest(dirty, written), new MigrationOptions(maxRounds, threshold));
            Assert.Equal(MigrationOutcome.Succeeded, report.Outcome);
            Assert.True(vm.IsDestroyed);
            var target = report.DestinationVm!;
            var mm = ((ModelAddressSpace)target.Host.Memory).Mm;
            var hva = target.Region("ram").Hva;
            Span<byte> buf = stackalloc byte[8];
            foreach (var (off, value) in written)
            {
                Assert.Equal(Errno.None, mm.Read(hva + off, buf));
                Assert.Equal(value, BitConverter.ToUInt64(buf));
            }

            // The pre-copy loop stopped for one of its two reasons.
            var last = report.Rounds.Where(r => r.Round > 0).Last();
            Assert.True(last.PagesDirtied <= threshold || last.Round == maxRounds);
        }, iter: 40);
    }

    /// <summary>A guest that writes (value, page) pairs in given pre-copy rounds through the allocation-free path; 0 zeroes a page.</summary>
    private sealed class SparseGuest(IReadOnlyList<(int Page, ulong Value)[]> perRound) : IMigrationGuest
    {
        public void RunDuringPrecopy(VirtualMachine source, int round)
        {
            if (round > perRound.Count)
                return;
            var vcpu = (ModelKvmVcpu)source.Vcpus[0];
            foreach (var (page, value) in perRound[round - 1])
                Assert.True(vcpu.Write(RamGpa + ((ulong)page * PageSize) + 64, BitConverter.GetBytes(value)).Completed);
        }

        public GuestResumeReport ResumeOn(VirtualMachine destination) => new(true, "");
    }

    /// <summary>
    /// A 2 GiB VM with 20,000 pages written before the migration and 3 pre-copy rounds rewriting 2,000 pages each (some
    /// back to zero): on the destination every page reads what the guest wrote last, and untouched pages read zero.
    /// </summary>
    [Fact]
    public void A_2_GiB_guest_arrives_intact_including_pages_it_zeroed_during_precopy()
    {
        const ulong Size = 2UL << 30;
        const int Pages = (int)(Size / PageSize);
        var rnd = new Random(7);
        var model = new Dictionary<int, ulong>();
        var src = NewHost("a", "neoverse-v2");
        var dst = NewHost("b", "neoverse-v2");
        var cfg = new VmConfig("vm", 40, 1, [new RegionConfig("ram", RamGpa, Size, false, new AnonymousRam())]);
        var vm = Vmm.Vmm.Start(NewVmm(src), cfg, VmmPolicy.TrustKernel).Vm!;
        var vcpu = (ModelKvmVcpu)vm.Vcpus[0];
        for (var i = 0; i < 20_000; i++)
        {
            var p = rnd.Next(Pages);
            model[p] = 0xA000_0000_0000UL | (uint)p;
            Assert.True(vcpu.Write(RamGpa + ((ulong)p * PageSize) + 64, BitConverter.GetBytes(model[p])).Completed);
        }

        var rounds = new List<(int, ulong)[]>();
        for (var r = 1; r <= 3; r++)
        {
            var batch = new (int, ulong)[2000];
            var known = model.Keys.ToArray();
            for (var i = 0; i < batch.Length; i++)
            {
                // Half rewrite or zero pages with data, half write new pages.
                var p = i % 2 == 0 ? known[rnd.Next(known.Length)] : rnd.Next(Pages);
                var v = i % 8 == 0 ? 0UL : ((ulong)r << 40) | (uint)p;
                batch[i] = (p, v);
                model[p] = v;
            }

            rounds.Add(batch);
        }

        var report = Migration.Migrate(vm, NewVmm(dst), VmmPolicy.TrustKernel, new SparseGuest(rounds), new MigrationOptions(MaxRounds: 3, StopCopyPages: 0));
        Assert.Equal(MigrationOutcome.Succeeded, report.Outcome);
        Assert.Equal(Pages, report.Rounds[0].PagesSent + report.Rounds[0].ZeroPages);
        var dv = (ModelKvmVcpu)report.DestinationVm!.Vcpus[0];
        var buf = new byte[8];
        foreach (var (p, v) in model)
        {
            Assert.True(dv.Read(RamGpa + ((ulong)p * PageSize) + 64, buf).Completed);
            Assert.Equal(v, BitConverter.ToUInt64(buf));
        }

        for (var i = 0; i < 2000; i++)
        {
            var p = rnd.Next(Pages);
            if (model.ContainsKey(p))
                continue;
            Assert.True(dv.Read(RamGpa + ((ulong)p * PageSize) + 64, buf).Completed);
            Assert.Equal(0UL, BitConverter.ToUInt64(buf));
        }
    }

    [Fact]
    public void Rule6_dirty_logging_is_turned_on_for_RAM_slots_only_and_device_memory_is_copied_whole()
    {
        var text = DemoScenario.Text();
        var scenario = ScenarioLoader.Parse(text, "demo.yaml");
        var run = ScenarioRunner.RunOnce(scenario, new DesignRef("linux-6.9"), RunVariant.Default);
        var m = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "grace-to-altra");
        Assert.Equal(MigrationVerdict.SucceededSameTypes, m.Outcome);
        // The resumed guest's first read of usemem goes around the dirty line the destination VMM restored it through
        // (Device stage 2 on altra, B2.11): dataIntact judges that read, before the guest writes again.
        Assert.False(m.DataIntact);
        var usemem = m.DeviceCopies.Single(c => c.Region == "gpu0.usemem");
        Assert.Equal(512UL << 20, usemem.Bytes);
        Assert.Contains("stop-and-copy", usemem.How, StringComparison.Ordinal);
        var bar0 = m.DeviceCopies.Single(c => c.Region == "gpu0.bar0");
        Assert.Equal(0UL, bar0.Bytes);
        Assert.Contains("vfio migration", bar0.How, StringComparison.Ordinal);
        // usemem was written through a Device stage-2 mapping while the VMM maps it cacheable: the copy is flagged.
        Assert.Contains(usemem.Hazards, h => h.Name == "stale-copy");
        Assert.All(m.DestinationRegions, r => Assert.Equal(KvmMemFlags.None, r.Flags & KvmMemFlags.LOG_DIRTY_PAGES));
    }

    [Theory]
    [InlineData(Kernel.Drivers.NvGraceUsememMapping.Pfnmap)]
    [InlineData(Kernel.Drivers.NvGraceUsememMapping.Mixedmap)]
    public void Device_memory_the_guest_wrote_arrives_too(Kernel.Drivers.NvGraceUsememMapping mapping)
    {
        // linux-6.17 maps the usemem Normal on this FWB host, as the guest and the VMM both see it cacheable. (Under
        // linux-6.9 stage 2 makes it Device: the destination VMM's restore then sits in dirty lines of its cacheable
        // alias, and the guest reads the PoC around them, B2.11: Migration_under_linux_6_9_leaves_the_restored_usemem_stale.)
        var src = NewHost("a", "neoverse-v2", "linux-6.17");
        var dst = NewHost("b", "neoverse-v2", "linux-6.17");
        const ulong Size = 64UL << 20, Gpa = 0x40_0000_0000;
        var srcRegion = UsememOf(src, Size, mapping);
        var dstRegion = UsememOf(dst, Size, mapping);
        var cfg = UsememVm(Size, Gpa);
        var vm = Vmm.Vmm.Start(WithDevice(src, srcRegion), cfg, VmmPolicy.TrustKernel).Vm!;
        var vcpu = (ModelKvmVcpu)vm.Vcpus[0];
        // The first and last words of the region, one in the middle, and one page written and then zeroed again.
        var values = new Dictionary<ulong, ulong> { [0] = 0x1111, [0x12340] = 0xFEED, [Size - 8] = 0x2222 };
        foreach (var (off, v) in values.Append(new(0x800000, 0x3333)))
            Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Write(Gpa + off, 0xFF, v)).Outcome);
        Assert.Equal(GuestAccessOutcome.Completed, vcpu.Access(GuestAccessRequest.Write(Gpa + 0x800000, 0xFF, 0)).Outcome);
        var report = Migration.Migrate(vm, WithDevice(dst, dstRegion), VmmPolicy.TrustKernel, new WritingGuest([], []), new MigrationOptions());
        Assert.Equal(MigrationOutcome.Succeeded, report.Outcome);
        var copy = report.DeviceCopies.Single();
        Assert.True(copy.Copied);
        Assert.Equal(Size, copy.Bytes);
        Assert.Equal(3, copy.PagesWithData); // the zeroed page holds only zeros: not written
        var dvcpu = (ModelKvmVcpu)report.DestinationVm!.Vcpus[0];
        foreach (var (off, v) in values.Append(new(0x800000, 0)))
            Assert.Equal(v, BitConverter.ToUInt64(dvcpu.Access(GuestAccessRequest.Read(Gpa + off, 0xFF)).Data));
    }

    [Fact]
    public void Migration_under_linux_6_9_leaves_the_restored_usemem_stale_for_a_guest_reading_it_as_Device()
    {
        // B2.11 (issue 12): linux-6.9 maps usemem Device at stage 2, the VMM maps it cacheable. The destination VMM
        // restores the page through its cacheable alias (dirty lines); the guest's Device read goes around the cache to
        // the PoC, which still holds zeros. The byte it should read is the one the source guest wrote.
        var src = NewHost("a", "neoverse-v2", "linux-6.9");
        var dst = NewHost("b", "neoverse-v2", "linux-6.9");
        const ulong Size = 64UL << 20, Gpa = 0x40_0000_0000;
        ModelVfioHost Usemem(Host h) => UsememOf(h, Size);
        var cfg = UsememVm(Size, Gpa);
        var vm = Vmm.Vmm.Start(WithDevice(src, Usemem(src)), cfg, VmmPolicy.TrustKernel).Vm!;
        var vcpu = (ModelKvmVcpu)vm.Vcpus[0];
        var w = vcpu.Access(GuestAccessRequest.Write(Gpa + 0x40, 0xFF, 0x1111UL));
        Assert.True(w.Effective!.Value.IsDevice);
        var report = Migration.Migrate(vm, WithDevice(dst, Usemem(dst)), VmmPolicy.TrustKernel, new WritingGuest([], []), new MigrationOptions());
        Assert.Equal(MigrationOutcome.Succeeded, report.Outcome);
        var dvcpu = (ModelKvmVcpu)report.DestinationVm!.Vcpus[0];
        var r = dvcpu.Access(GuestAccessRequest.Read(Gpa + 0x40, 0xFF));
        Assert.Equal(Arch.Caches.AccessPath.Bypass, r.Path);
        Assert.Equal(0UL, BitConverter.ToUInt64(r.Data)); // read: the PoC under the restore's dirty line
        dst.Caches.Evict(r.HostPhysAddr!.Value); // the line written back (allowed at any time, D7.5.1)
        Assert.Equal(0x1111UL, BitConverter.ToUInt64(dvcpu.Access(GuestAccessRequest.Read(Gpa + 0x40, 0xFF)).Data)); // expected
    }

    [Fact]
    public void Device_memory_the_source_VMM_cannot_read_fails_the_copy_even_where_nothing_was_written()
    {
        var src = NewHost("a", "neoverse-v2", "linux-6.9");
        var dst = NewHost("b", "neoverse-v2", "linux-6.9");
        const ulong Size = 64UL << 20, Gpa = 0x40_0000_0000;
        ModelVfioHost Usemem(Host h) => UsememOf(h, Size);
        var cfg = UsememVm(Size, Gpa);
        var vm = Vmm.Vmm.Start(WithDevice(src, Usemem(src)), cfg, VmmPolicy.TrustKernel).Vm!;
        Assert.Equal(GuestAccessOutcome.Completed, ((ModelKvmVcpu)vm.Vcpus[0]).Access(GuestAccessRequest.Write(Gpa, 0xFF, 7)).Outcome);
        // The VMM makes one never-written page of its mapping unreadable: reading the region whole would fail there.
        Assert.Equal(Kernel.Kvm.Uapi.Errno.None, vm.Mprotect("usemem", 32UL << 20, 4096, Kernel.Kvm.Uapi.Prot.PROT_NONE));
        var report = Migration.Migrate(vm, WithDevice(dst, Usemem(dst)), VmmPolicy.TrustKernel, new WritingGuest([], []), new MigrationOptions());
        Assert.Equal(MigrationOutcome.SetupFailed, report.Outcome);
        Assert.True(report.DeviceCopies.Single().Failed);
        Assert.False(vm.IsDestroyed); // the guest stays on the source
    }

    [Fact]
    public void A_setup_failure_leaves_the_guest_running_on_the_source()
    {
        var text = DemoScenario.Text() + "\n  - { id: still-there, start: { vm: vm, host: grace } }\n";
        var scenario = ScenarioLoader.Parse(text.Edit("  - id: grace-to-altra\n    migrate: { vm: vm, to: altra, dirty: [{ region: ram, offset: 0x10000, pages: 16, rounds: 2 }] }\n  - stop: vm",
            "  - id: grace-to-altra\n    migrate: { vm: vm, to: altra }\n  - { id: after-failed, access: { vm: vm, region: ram, offset: 0x2000, mair: 0xFF, type: read } }\n  - stop: vm"), "demo.yaml");
        var run = ScenarioRunner.RunOnce(scenario, new DesignRef("linux-6.17"), RunVariant.Default);
        Assert.Equal(MigrationVerdict.SetupFailed, run.Steps.OfType<MigrateResult>().Single(m => m.Label == "grace-to-altra").Outcome);
        var after = run.Steps.OfType<AccessResult>().Single(a => a.Label == "after-failed").Region;
        Assert.Equal("grace", after.Host);
        Assert.Equal(AccessOutcome.Ok, after.Accesses.Single().Outcome);
        Assert.Equal(0xFEEDFACECAFEBEEFUL, after.Accesses.Single().Value);
    }

    /// <summary>Two hosts with FWB but different kernels: the memory type changes under the guest, silently.</summary>
    [Fact]
    public void A_migration_to_an_older_kernel_changes_usemem_silently_and_fails_property_6()
    {
        const string text = """
            name: downgrade
            hosts:
              new:
                cpu: neoverse-v2
                design: linux-6.17
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } }
              old:
                cpu: neoverse-v2
                design: linux-6.9
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } }
            vms:
              vm:
                host: new
                memory: [ { name: ram, gpa: 0x40000000, size: 16MiB } ]
                devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
            steps:
              - start: vm
              - { access: { vm: vm, region: gpu0.usemem, mair: 0xFF, type: [read, write] } }
              - { id: m, migrate: { vm: vm, to: old } }
              # dataIntact false: the old kernel maps usemem Device, so the guest's first read goes around the line the
              # destination VMM restored it through (B2.11) and does not find what it wrote.
              - expect: { step: m, outcome: succeeded-changed-types, changed: gpu0.usemem, dataIntact: false }
              - expect: { scorecard: { clearMigrationSemantics: false, noMismatchedAlias: false } }
            """;
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(text, "downgrade.yaml"), null);
        Assert.True(report.ExpectationsPassed, string.Join("; ", report.Checks.Where(c => !c.Check.Passed).Select(c => $"{c.Check.Field}: {c.Check.Actual}")));
        var m = report.Runs[0].Steps.OfType<MigrateResult>().Single();
        Assert.Equal("normal / Normal-WB", m.Changes.Single().Before);
        Assert.Equal("device-ngnre / Device-nGnRE", m.Changes.Single().After);
    }

    /// <summary>Never copy silently wrong: memory the VMM can no longer read stops the migration before switch-over.</summary>
    [Theory]
    [InlineData("ram", "RAM pre-copy")]
    [InlineData("gpu0.usemem", "device memory copy (gpu0.usemem)")]
    public void Memory_the_VMM_unmapped_stops_the_migration_before_switchover(string region, string call)
    {
        var text = $$"""
            name: unmapped
            hosts:
              a: { cpu: neoverse-v2, design: linux-6.9, devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } } }
              b: { cpu: neoverse-n1, design: linux-6.9, devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } } }
            vms:
              vm:
                host: a
                memory: [ { name: ram, gpa: 0x40000000, size: 16MiB } ]
                devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
            steps:
              - start: vm
              - { access: { vm: vm, region: ram, offset: 0x3000, mair: 0xFF, type: write, value: 7 } }
              - { munmap: { vm: vm, region: {{region}}, offset: 0x200000, size: 0x1000 } }
              - { id: m, migrate: { vm: vm, to: b } }
              - { id: after, access: { vm: vm, region: ram, offset: 0x3000, mair: 0xFF, type: read } }
              - expect: { step: m, outcome: setup-failed, call: "{{call}}", errno: EFAULT }
              - expect: { step: after, read: ok, value: 7 }
              - expect: { scorecard: { clearMigrationSemantics: true } }
            """;
        var report = ScenarioRunner.Run(ScenarioLoader.Parse(text, "unmapped.yaml"), null);
        Assert.True(report.ExpectationsPassed, string.Join("; ", report.Checks.Where(c => !c.Check.Passed).Select(c => $"{c.Check.Field}: {c.Check.Actual}")));
        Assert.Equal("a", report.Runs[0].Steps.OfType<AccessResult>().Last().Region.Host);
    }

    [Fact]
    public void A_cancelled_migration_turns_dirty_logging_off_again()
    {
        var src = NewHost("a", "neoverse-v2");
        var cfg = new VmConfig("vm", 40, 1, [new RegionConfig("ram", RamGpa, RamSize, false, new AnonymousRam())]);
        var vm = Vmm.Vmm.Start(NewVmm(src), cfg, VmmPolicy.TrustKernel).Vm!;
        Assert.Equal(Errno.None, vm.Munmap("ram", 0x100000, PageSize));
        var report = Migration.Migrate(vm, NewVmm(NewHost("b", "neoverse-n1")), VmmPolicy.TrustKernel, new WritingGuest([], []), new MigrationOptions());
        Assert.Equal(MigrationOutcome.SetupFailed, report.Outcome);
        Assert.False(vm.IsDestroyed);
        Assert.Equal(KvmMemFlags.None, vm.Region("ram").Flags & KvmMemFlags.LOG_DIRTY_PAGES);
        Assert.True(report.Destination!.Vm!.IsDestroyed);
        var ram = new ulong[(RamSize / PageSize + 63) / 64];
        Assert.Equal(Errno.ENOENT, vm.Kvm.GetDirtyLog(vm.Region("ram").Slot, ram));
    }

    /// <summary>The model's KVM, with KVM_GET_DIRTY_LOG failing: a VMM must report the kernel's errno, not a made-up one.</summary>
    private sealed class FailingDirtyLogKvm(IKvmSystem inner, Errno error) : IKvmSystem
    {
        public KvmArch Arch => inner.Arch;

        public int GetApiVersion() => inner.GetApiVersion();

        public KvmResult<long> CheckExtension(uint cap) => inner.CheckExtension(cap);

        public KvmResult<IKvmVm> CreateVm(ulong type = 0)
        {
            var vm = inner.CreateVm(type);
            return vm.IsOk ? KvmResult<IKvmVm>.Ok(new Vm(vm.Value, error)) : vm;
        }

        public void Dispose() => inner.Dispose();

        private sealed class Vm(IKvmVm inner, Errno error) : IKvmVm
        {
            public KvmResult<long> CheckExtension(uint cap) => inner.CheckExtension(cap);

            public Errno SetUserMemoryRegion(in KvmUserspaceMemoryRegion region) => inner.SetUserMemoryRegion(region);

            public Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region) => inner.SetUserMemoryRegion2(region);

            public KvmResult<int> CreateGuestMemfd(ulong size, ulong flags) => inner.CreateGuestMemfd(size, flags);

            public Errno GetDirtyLog(uint slot, Span<ulong> bitmap) => error;

            public KvmResult<IKvmVcpu> CreateVcpu(uint id) => inner.CreateVcpu(id);

            public Errno EnableCap(uint cap, ulong arg0 = 0) => inner.EnableCap(cap, arg0);

            public void Dispose() => inner.Dispose();
        }
    }

    [Fact]
    public void A_failed_dirty_log_read_reports_the_kernels_errno_and_leaves_the_guest_on_the_source()
    {
        var src = NewHost("a", "neoverse-v2");
        var p = src.CreateProcess("qemu");
        var vmmHost = ModelVmm.Host(src.Name, p, new FailingDirtyLogKvm(src.OpenKvm(p), Errno.EIO));
        var cfg = new VmConfig("vm", 40, 1, [new RegionConfig("ram", RamGpa, RamSize, false, new AnonymousRam())]);
        var vm = Vmm.Vmm.Start(vmmHost, cfg, VmmPolicy.TrustKernel).Vm!;
        var report = Migration.Migrate(vm, NewVmm(NewHost("b", "neoverse-v2")), VmmPolicy.TrustKernel, new WritingGuest([], []), new MigrationOptions());
        Assert.Equal(MigrationOutcome.SetupFailed, report.Outcome);
        Assert.Equal(Errno.EIO, report.Errno);
        Assert.StartsWith("KVM_GET_DIRTY_LOG slot", report.FailedCall, StringComparison.Ordinal);
        Assert.Contains("the guest stays on the source", report.Reason, StringComparison.Ordinal);
        Assert.False(vm.IsDestroyed);
        Assert.False(vm.Paused);
        Assert.Equal(KvmMemFlags.None, vm.Region("ram").Flags & KvmMemFlags.LOG_DIRTY_PAGES);
        Assert.True(report.Destination!.Vm!.IsDestroyed);
    }

    /// <summary>
    /// The data check after a migration compares what the guest wrote with what it reads on the destination. Two VMs
    /// given the same GPU on one host share its memory: when the second overwrites a value the first wrote, the
    /// migrated guest reads the other VM's value, and the check must say so.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Migration_data_check_reports_a_value_changed_behind_the_guest(bool overwritten)
    {
        var text = $$"""
            name: shared-gpu
            hosts:
              a:
                cpu: neoverse-v2
                design: linux-6.17
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } }
              b:
                cpu: neoverse-v2
                design: linux-6.17
                devices: { gpu0: { kind: nvgrace-gpu, model: gb200, usemem: 64MiB } }
            vms:
              vm1:
                host: a
                memory: [ { name: ram, gpa: 0x40000000, size: 16MiB } ]
                devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
              vm2:
                host: a
                memory: [ { name: ram, gpa: 0x40000000, size: 16MiB } ]
                devices: [ { device: gpu0, regions: { usemem: { gpa: 0x4000000000 } } } ]
            steps:
              - start: { vm: vm1, host: a }
              - start: { vm: vm2, host: a }
              - { access: { vm: vm1, region: gpu0.usemem, offset: 0x1000, mair: 0xFF, type: write, value: 0x1111 } }
              - { access: { vm: vm1, region: gpu0.usemem, offset: 0x2000, mair: 0xFF, type: write, value: 0x3333 } }
              - { access: { vm: vm2, region: gpu0.usemem, offset: {{(overwritten ? "0x1000" : "0x5000")}}, mair: 0xFF, type: write, value: 0x2222 } }
              - { id: m, migrate: { vm: vm1, to: b } }
            """;
        var run = ScenarioRunner.RunOnce(ScenarioLoader.Parse(text, "shared-gpu.yaml"), new DesignRef("linux-6.17"), RunVariant.Default);
        var m = run.Steps.OfType<MigrateResult>().Single(x => x.Label == "m");
        Assert.Equal(MigrationVerdict.SucceededSameTypes, m.Outcome);
        Assert.Equal(!overwritten, m.DataIntact);
        if (overwritten)
            Assert.Contains("read 0x0000000000002222, expected 0x0000000000001111", m.DataCheck, StringComparison.Ordinal);
    }
}
