using CsCheck;
using S2Lab.Kernel;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;

namespace S2Lab.Linux.Tests;

/// <summary>
/// The VMM's address space on real Linux against the model's, call by call: anonymous mmap, mprotect, munmap, mincore
/// and the VMM's own loads and stores give the same errno (and the same residency and bytes) on both.
/// </summary>
public class LinuxAddressSpaceTests
{
    private const ulong Page = 4096;
    private const int Pages = 16;

    private static readonly Prot[] Prots = [Prot.PROT_NONE, Prot.PROT_READ, Prot.PROT_READ | Prot.PROT_WRITE];

    /// <summary>One call: 0 store, 1 load, 2 mprotect, 3 munmap, 4 mincore, over pages [First, First+Count).</summary>
    private readonly record struct Op(int Kind, int First, int Count, int Prot, byte Value, bool Misaligned);

    // No munmap in the random sequence: a hole in the real range is free address space that the .NET runtime may map
    // between two calls (a store there would write into the runtime's memory, and the final munmap would unmap it; a
    // run aborted that way). Only a whole-range munmap is compared with real Linux, in the fixed tests below.
    private static readonly Gen<Op> OpGen = Gen.Select(Gen.Int[0, 3].Select(k => k == 3 ? 4 : k), Gen.Int[0, Pages - 1], Gen.Int[1, 4], Gen.Int[0, 2], Gen.Byte, Gen.Int[0, 15])
        .Select((k, f, c, p, v, m) => new Op(k, f, Math.Min(c, Pages - f), p, v, m == 0));

    private static string Apply(IHostAddressSpace a, Hva start, Op op)
    {
        var at = start + ((ulong)op.First * Page) + (op.Misaligned ? 8UL : 0);
        var size = (ulong)op.Count * Page;
        switch (op.Kind)
        {
            case 0:
                var data = new byte[16];
                Array.Fill(data, op.Value);
                return $"store {a.Write(at, data)}";
            case 1:
                var got = new byte[16];
                var e = a.Read(at, got);
                return $"load {e} {(e == Errno.None ? Convert.ToHexString(got) : "")}";
            case 2:
                return $"mprotect {a.Protect(at, size, Prots[op.Prot])}";
            case 3:
                return $"munmap {a.Unmap(at, size)}";
            default:
                var vec = new byte[op.Count];
                var m = a.Residency(at, size, vec);
                return $"mincore {m} {(m == Errno.None ? Convert.ToHexString(vec) : "")}";
        }
    }

    [LinuxFact]
    public void Anonymous_memory_answers_as_the_model_does_call_by_call()
    {
        OpGen.Array[1, 24].Sample(ops =>
        {
            var host = Host.Create("h", "neoverse-v2", "linux-6.17");
            var model = new ModelAddressSpace(host.CreateProcess("vmm"));
            var real = new LinuxAddressSpace();
            var rw = Prot.PROT_READ | Prot.PROT_WRITE;
            var m = model.MapAnonymous(Pages * Page, rw, "ram").Value;
            var r = real.MapAnonymous(Pages * Page, rw, "ram").Value;
            try
            {
                var modelAnswers = new List<string>();
                var realAnswers = new List<string>();
                foreach (var op in ops)
                {
                    modelAnswers.Add(Apply(model, m, op));
                    realAnswers.Add(Apply(real, r, op));
                }

                Assert.True(modelAnswers.SequenceEqual(realAnswers), string.Join("\n", ops.Select((o, i) => $"{o}: model {modelAnswers[i]}, real {realAnswers[i]}")));
            }
            finally
            {
                real.Unmap(r, Pages * Page);
            }
        }, iter: 60, threads: 1); // one at a time: an iteration's final munmap covers its whole original range, where a parallel one may have mapped
    }

    [LinuxFact]
    public void Zero_length_and_unaligned_calls_fail_as_in_the_model()
    {
        var model = new ModelAddressSpace(Host.Create("h", "neoverse-v2", "linux-6.17").CreateProcess("vmm"));
        var real = new LinuxAddressSpace();
        var rw = Prot.PROT_READ | Prot.PROT_WRITE;
        Assert.Equal(Errno.EINVAL, model.MapAnonymous(0, rw, "x").Error);
        Assert.Equal(Errno.EINVAL, real.MapAnonymous(0, rw, "x").Error); // mmap(2): length 0
        var r = real.MapAnonymous(2 * Page, rw, "x").Value;
        var m = model.MapAnonymous(2 * Page, rw, "x").Value;
        Assert.Equal(Errno.EINVAL, real.Residency(r + 1, Page, new byte[1]));
        Assert.Equal(Errno.EINVAL, model.Residency(m + 1, Page, new byte[1]));
        Assert.Equal(Errno.EFAULT, real.Residency(r, 2 * Page, new byte[1])); // the vector is a page short
        Assert.Equal(Errno.EFAULT, model.Residency(m, 2 * Page, new byte[1]));
        Assert.Equal(Errno.None, real.Unmap(r, 2 * Page));
    }

    [LinuxFact]
    public void A_file_maps_over_a_reservation_at_its_address_and_a_missing_file_is_ENOENT()
    {
        // /dev/zero shared is shmem on Linux; the model's /dev/zero here is a driver giving shared anonymous memory.
        var files = new ModelFiles().Add("/dev/zero", (p, at, len, prot) =>
            Kernel.Drivers.AnonymousMemory.Mmap(p, len, prot, at, thp: false, shared: true));
        var model = new ModelAddressSpace(Host.Create("h", "neoverse-v2", "linux-6.17").CreateProcess("vmm"), files: files);
        var real = new LinuxAddressSpace();
        var rw = Prot.PROT_READ | Prot.PROT_WRITE;
        foreach (var a in (IHostAddressSpace[])[model, real])
        {
            var start = a.MapAnonymous(4 * Page, Prot.PROT_NONE, "reserve").Value;
            Assert.Equal(Errno.ENOENT, a.MapFileFixed("/dev/s2lab-no-such-file", start, Page, rw).Error);
            Assert.Equal(start + Page, a.MapFileFixed("/dev/zero", start + Page, Page, rw).Value);
            Assert.Equal(Errno.None, a.Write(start + Page, [0x5A]));
            var got = new byte[1];
            Assert.Equal((Errno.None, (byte)0x5A), (a.Read(start + Page, got), got[0]));
            Assert.Equal(Errno.EFAULT, a.Read(start, got)); // the rest of the reservation is still PROT_NONE
            Assert.Equal(Errno.None, a.Unmap(start, 4 * Page));
        }
    }

    /// <summary>
    /// MAP_FIXED anonymous memory (a replay's anon lines): it replaces what was at the address, reads as zeros,
    /// takes stores, and an unaligned address or an empty length is EINVAL, on Linux as in the model.
    /// </summary>
    [LinuxFact]
    public void Fixed_anonymous_memory_replaces_a_reservation_at_its_address()
    {
        var model = new ModelAddressSpace(Host.Create("h", "neoverse-v2", "linux-6.17").CreateProcess("vmm"));
        var real = new LinuxAddressSpace();
        var rw = Prot.PROT_READ | Prot.PROT_WRITE;
        foreach (var a in (IHostAddressSpace[])[model, real])
        {
            var start = a.MapAnonymous(4 * Page, Prot.PROT_NONE, "reserve").Value;
            Assert.Equal(Errno.EINVAL, a.MapAnonymousFixed(start + 8, Page, rw, "anon").Error);
            Assert.Equal(Errno.EINVAL, a.MapAnonymousFixed(start, 0, rw, "anon").Error);
            Assert.Equal(start + Page, a.MapAnonymousFixed(start + Page, 2 * Page, rw, "anon").Value);
            var got = new byte[8];
            Assert.Equal((Errno.None, 0UL), (a.Read(start + (2 * Page), got), BitConverter.ToUInt64(got)));
            Assert.Equal(Errno.None, a.Write(start + Page, [0x5A]));
            Assert.Equal(Errno.EFAULT, a.Read(start, got)); // the rest of the reservation is still PROT_NONE
            Assert.Equal(Errno.EFAULT, a.Read(start + (3 * Page), got));
            // Mapping again over it replaces the pages: the store is gone.
            Assert.Equal(start + Page, a.MapAnonymousFixed(start + Page, Page, rw, "anon").Value);
            Assert.Equal((Errno.None, 0UL), (a.Read(start + Page, got), BitConverter.ToUInt64(got)));
            Assert.Equal(Errno.None, a.Unmap(start, 4 * Page));
        }
    }

    [LinuxFact]
    public void No_vfio_device_opens_on_this_backend()
    {
        Assert.Equal(Errno.ENODEV, new LinuxVfioHost().Open("gpu0").Error);
        var dev = new VfioDevice("gpu0", "vfio-pci", [new VfioRegionInfo(0, Page, 0, VfioRegionFlags.Mmap)]);
        Assert.Equal(Errno.ENODEV, new LinuxAddressSpace().MapDeviceRegion(dev, dev.Regions[0], Prot.PROT_READ).Error);
    }
}

/// <summary>A fact that needs a Linux host (the system calls); skipped elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
            Skip = "needs a Linux host";
    }
}
