using S2Lab.Kernel;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;
using S2Lab.Vmm;

namespace S2Lab.Linux.Tests.Differential;

/// <summary>
/// The guest-access seam (docs/architecture.md): a scenario's access is a one-op <see cref="GuestProgram"/> loaded
/// through <see cref="IGuestLoader"/> and run with KVM_RUN. On real KVM the loader can express a plain load or store
/// at a guest-physical address; what needs the guest's own page tables or SCTLR_EL1 it refuses with EINVAL and says why.
/// </summary>
public class GuestAccessTests
{
    private const ulong RamSize = 2UL << 20;
    private const ulong CodeIpa = 0x1000; // RAM page 1: below 1 MiB for x86_64 real mode

    private static readonly VmConfig Ram = new("vm", 40, 1, [new RegionConfig("ram", 0, RamSize, false, new AnonymousRam())]);

    /// <summary>Each op as its own program: the end exit or the exit's reason, and the loads' values.</summary>
    private static List<string> RunEach(VirtualMachine vm, IEnumerable<GuestOp> ops)
    {
        var code = new Hva(vm.Region("ram").Hva + CodeIpa);
        var seen = new List<string>();
        foreach (var op in ops)
        {
            Assert.Equal(Errno.None, vm.Host.Guest.Load(vm.Vcpus[0], code, CodeIpa, GuestProgram.Access(op)));
            var exit = vm.Vcpus[0].Run();
            var how = !exit.IsOk ? exit.Error.ToString() : exit.Value.Reason == vm.Host.Guest.EndExit ? "end" : exit.Value.Reason.ToString();
            seen.Add($"{op.Kind} 0x{op.Ipa:x}: {how} [{string.Join(",", vm.Host.Guest.LoadedValues(vm.Vcpus[0]).Select(v => $"0x{v:x}"))}]");
        }

        return seen;
    }

    private static readonly GuestOp[] Ops =
    [
        GuestOp.Store(0x8008, 0xFEED_FACE_CAFE_BEEF), // a write ...
        GuestOp.Load(0x8008), // ... then a read returns its bytes
        GuestOp.Load(0x9000), // untouched RAM reads as zeros
        GuestOp.Store(0x3000_0000, 5), // no memslot: KVM_EXIT_MMIO
    ];

    [KvmFact]
    public void One_op_access_programs_answer_on_real_KVM_as_on_the_model()
    {
        using var kvm = RealKvm.Open();
        var memory = new LinuxAddressSpace();
        var real = Vmm.Vmm.Start(new VmmHost("real", kvm, memory, new LinuxVfioHost(), new LinuxGuestLoader(memory, kvm.Arch)), Ram, VmmPolicy.TrustKernel).Vm!;
        var onReal = RunEach(real, Ops);
        var stored = new byte[8];
        Assert.Equal(Errno.None, memory.Read(new Hva(real.Region("ram").Hva + 0x8008), stored));
        Assert.Equal(0xFEED_FACE_CAFE_BEEFUL, BitConverter.ToUInt64(stored)); // the VMM sees the guest's store
        real.Dispose();

        var h = Host.Create("model", "neoverse-v2", "linux-6.17");
        var p = h.CreateProcess("vmm");
        var model = Vmm.Vmm.Start(ModelVmm.Host("model", p, h.OpenKvm(p)), Ram, VmmPolicy.TrustKernel).Vm!;
        var onModel = RunEach(model, Ops);
        Assert.Equal(onModel, onReal);
        Assert.Equal("Load 0x8008: end [0xfeedfacecafebeef]", onReal[1]);
        Assert.StartsWith("Store 0x30000000: Mmio", onReal[3], StringComparison.Ordinal);
    }

    [KvmFact]
    public void The_real_loader_refuses_a_stage_1_attribute_or_an_SCTLR_EL1_it_cannot_express_and_says_why()
    {
        using var kvm = RealKvm.Open();
        var memory = new LinuxAddressSpace();
        var loader = new LinuxGuestLoader(memory, kvm.Arch);
        var vm = Vmm.Vmm.Start(new VmmHost("real", kvm, memory, new LinuxVfioHost(), loader), Ram, VmmPolicy.TrustKernel).Vm!;
        var code = new Hva(vm.Region("ram").Hva + CodeIpa);

        Assert.Equal(Errno.EINVAL, loader.Load(vm.Vcpus[0], code, CodeIpa, GuestProgram.Access(GuestOp.Load(0x8000, mair: 0x44))));
        Assert.Contains("MAIR 0x44", loader.LastRefusal, StringComparison.Ordinal);
        // A booted guest's SCTLR_EL1 (MMU and caches on) needs page tables and an MSR: x86_64 has no such register, and
        // the arm64 loader's guest runs as KVM_ARM_VCPU_INIT leaves it (all off).
        Assert.Equal(Errno.EINVAL, loader.Load(vm.Vcpus[0], code, CodeIpa, GuestProgram.Access(GuestOp.Load(0x8000), SctlrEl1.Enabled)));
        Assert.Contains("SCTLR_EL1", loader.LastRefusal, StringComparison.Ordinal);
        // What it can express, it loads; the refusal is cleared.
        Assert.Equal(Errno.None, loader.Load(vm.Vcpus[0], code, CodeIpa, GuestProgram.Access(GuestOp.Load(0x8000))));
        Assert.Null(loader.LastRefusal);
        vm.Dispose();
    }
}
