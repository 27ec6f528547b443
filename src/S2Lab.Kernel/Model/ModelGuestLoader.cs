using System.Runtime.CompilerServices;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Kernel.Model;

/// <summary>
/// <see cref="IGuestLoader"/> for model vCPUs: the model guest has no instructions, so a program is enqueued as
/// <see cref="GuestAccessRequest"/>s (<see cref="ModelKvmVcpu.Enqueue"/>) that the next KVM_RUN executes; nothing is
/// written to the code page. The loads' values come from the vCPU's <see cref="ModelKvmVcpu.History"/>. Each op keeps
/// its stage-1 attribute (<see cref="GuestOp.Mair"/>), and the program's SCTLR_EL1 (<see cref="GuestProgram.Sctlr"/>)
/// is set on the vCPU at load: the model vCPU runs nothing between the load and KVM_RUN, so this is the same as the
/// program setting it first. What each op did comes back as kernel events (<c>MemoryAccessed</c>, <c>AccessEnded</c>,
/// with the fault decisions, stage-2 writes and CMOs before them) when someone observes the /dev/kvm.
/// </summary>
public sealed class ModelGuestLoader : IGuestLoader
{
    private sealed class Loaded
    {
        public long FirstAccess;
        public bool[] IsLoad = [];
    }

    private readonly ConditionalWeakTable<ModelKvmVcpu, Loaded> _loaded = [];

    /// <summary>A model vCPU's KVM_RUN returns <see cref="KvmExitReason.Hlt"/> when its queue is empty.</summary>
    public KvmExitReason EndExit => KvmExitReason.Hlt;

    /// <summary>
    /// Enqueues the program. EBADF for a vCPU that is not a model vCPU; EINVAL for a program longer than the history
    /// the vCPU keeps (<see cref="ModelKvmVcpu.HistoryCapacity"/>), whose loaded values could not all be read back.
    /// </summary>
    public Errno Load(IKvmVcpu vcpu, Hva codeHva, ulong codeIpa, GuestProgram program)
    {
        if (vcpu is not ModelKvmVcpu cpu)
            return Errno.EBADF;
        if (program.Ops.Count > ModelKvmVcpu.HistoryCapacity)
            return Errno.EINVAL;
        var requests = new GuestAccessRequest[program.Ops.Count];
        var isLoad = new bool[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            var op = program.Ops[i];
            requests[i] = op.Kind switch
            {
                GuestOpKind.Load => GuestAccessRequest.Read(op.Ipa, op.Mair),
                GuestOpKind.Store => GuestAccessRequest.Write(op.Ipa, op.Mair, op.Value),
                _ => GuestAccessRequest.Exec(op.Ipa, op.Mair),
            };
            isLoad[i] = op.Kind == GuestOpKind.Load;
        }

        if (program.Sctlr is { } sctlr)
        {
            cpu.SctlrM = (sctlr & SctlrEl1.M) != 0;
            cpu.SctlrC = (sctlr & SctlrEl1.C) != 0;
            cpu.SctlrI = (sctlr & SctlrEl1.I) != 0;
        }

        _loaded.AddOrUpdate(cpu, new Loaded { FirstAccess = cpu.AccessesRun, IsLoad = isLoad });
        cpu.Enqueue(requests);
        return Errno.None;
    }

    /// <summary>The loads of the last program that completed, in program order (a load that faulted has no value).</summary>
    public IReadOnlyList<ulong> LoadedValues(IKvmVcpu vcpu)
    {
        if (vcpu is not ModelKvmVcpu cpu || !_loaded.TryGetValue(cpu, out var l))
            return [];
        var history = cpu.History;
        var ran = (int)Math.Min(cpu.AccessesRun - l.FirstAccess, l.IsLoad.Length);
        var first = history.Count - (int)(cpu.AccessesRun - l.FirstAccess);
        var values = new List<ulong>();
        for (int i = 0; i < ran; i++)
        {
            if (first + i < 0)
                continue; // dropped from the history by later accesses
            var r = history[first + i];
            if (l.IsLoad[i] && r.Outcome == GuestAccessOutcome.Completed && r.Data is { Length: >= 8 } d)
                values.Add(BitConverter.ToUInt64(d));
        }

        return values;
    }
}
