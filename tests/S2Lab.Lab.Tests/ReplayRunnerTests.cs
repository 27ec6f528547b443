using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Tests;

/// <summary>The runner's bookkeeping (which VM, which descriptor), checked against a recording fake KVM.</summary>
public class ReplayRunnerTests
{
    private sealed class FakeKvm(bool failVm = false) : IKvmSystem
    {
        public List<FakeVm> Vms { get; } = [];
        public int NextFd = 100;

        public KvmArch Arch => KvmArch.X86_64;
        public int GetApiVersion() => 12;
        public KvmResult<long> CheckExtension(uint cap) => KvmResult<long>.Ok(0);

        public KvmResult<IKvmVm> CreateVm(ulong type = 0)
        {
            if (failVm)
                return Errno.EINVAL;
            var vm = new FakeVm(this);
            Vms.Add(vm);
            return KvmResult<IKvmVm>.Ok(vm);
        }

        public void Dispose()
        {
        }
    }

    private sealed class FakeVm(FakeKvm kvm) : IKvmVm
    {
        public List<KvmUserspaceMemoryRegion2> Calls { get; } = [];
        public List<int> Versions { get; } = [];
        public bool Disposed { get; private set; }

        public KvmResult<long> CheckExtension(uint cap) => KvmResult<long>.Ok(0);

        public Errno SetUserMemoryRegion(in KvmUserspaceMemoryRegion region)
        {
            Calls.Add(KvmUserspaceMemoryRegion2.FromV1(region));
            Versions.Add(1);
            return region.Slot == 99 ? Errno.EEXIST : Errno.None;
        }

        public Errno SetUserMemoryRegion2(in KvmUserspaceMemoryRegion2 region)
        {
            Calls.Add(region);
            Versions.Add(2);
            return Errno.None;
        }

        public KvmResult<int> CreateGuestMemfd(ulong size, ulong flags) => size == 0 ? Errno.EINVAL : KvmResult<int>.Ok(kvm.NextFd++);
        public Errno GetDirtyLog(uint slot, Span<ulong> bitmap) => Errno.ENOENT;
        public KvmResult<IKvmVcpu> CreateVcpu(uint id) => Errno.ENOSYS;
        public Errno EnableCap(uint cap, ulong arg0 = 0) => Errno.EINVAL;
        public void Dispose() => Disposed = true;
    }

    private static ReplayFile Parse(string text) => ReplayParser.Parse(new StringReader(text), "t").File!;

    [Fact]
    public void Operations_act_on_the_newest_vm_and_gmem_handles_map_to_their_descriptors()
    {
        var kvm = new FakeKvm();
        var steps = ReplayRunner.Run(kvm, Parse("""
            {"op":"create_vm"}
            {"op":"create_gmem","size":4096}
            {"op":"create_gmem","size":0}
            {"op":"set","v":1,"slot":99,"gpa":0,"size":4096}
            {"op":"create_vm"}
            {"op":"set","v":2,"slot":1,"flags":4,"gpa":0,"size":4096,"gmem":0,"gmem_offset":8192}
            {"op":"set","v":2,"slot":2,"flags":4,"gpa":0,"size":4096,"gmem":1}
            {"op":"set","v":2,"slot":3,"flags":4,"gpa":0,"size":4096,"gmem":-1}
            {"op":"set","v":2,"slot":4,"flags":4,"gpa":0,"size":4096}
            """).Ops);
        Assert.Equal([Errno.None, Errno.None, Errno.EINVAL, Errno.EEXIST, Errno.None, Errno.None, Errno.None, Errno.None, Errno.None],
            steps.Select(s => s.Result));
        Assert.Single(kvm.Vms[0].Calls);
        var second = kvm.Vms[1].Calls;
        Assert.Equal(4, second.Count);
        Assert.Equal((100u, 8192UL), (second[0].GuestMemfd, second[0].GuestMemfdOffset)); // the first VM's guest_memfd, by its fd
        Assert.Equal(ReplayRunner.ClosedDescriptor, second[1].GuestMemfd); // a failed create_gmem is still handle 1
        Assert.Equal(ReplayRunner.ClosedDescriptor, second[2].GuestMemfd);
        Assert.Equal(ReplayRunner.ClosedDescriptor, second[3].GuestMemfd);
        Assert.All(kvm.Vms, vm => Assert.True(vm.Disposed));
    }

    [Fact]
    public void After_a_failed_create_vm_every_vm_operation_is_EBADF()
    {
        var steps = ReplayRunner.Run(new FakeKvm(failVm: true), Parse("""
            {"op":"create_vm"}
            {"op":"create_gmem","size":4096}
            {"op":"set","v":1,"slot":0,"gpa":0,"size":4096}
            """).Ops);
        Assert.Equal([Errno.EINVAL, Errno.EBADF, Errno.EBADF], steps.Select(s => s.Result));
    }

    [Fact]
    public void Expectations_are_compared_per_step()
    {
        var steps = ReplayRunner.Run(new FakeKvm(), Parse("""
            {"op":"create_vm","expect":"0"}
            {"op":"set","v":1,"slot":99,"gpa":0,"size":4096,"expect":"EINVAL"}
            {"op":"set","v":1,"slot":1,"gpa":0,"size":4096}
            """).Ops);
        Assert.Equal([true, false, true], steps.Select(s => s.MatchesExpectation));
    }
}
