using S2Lab.Kernel.Kvm.Uapi;

namespace S2Lab.Vmm;

/// <summary>The guest's side of a migration: what it does while pre-copy runs, and after it switches over.</summary>
public interface IMigrationGuest
{
    /// <summary>The guest runs on the source during pre-copy round <paramref name="round"/> (1-based) and may write RAM.</summary>
    void RunDuringPrecopy(VirtualMachine source, int round);

    /// <summary>After switch-over the guest runs on the destination and touches its memory again.</summary>
    GuestResumeReport ResumeOn(VirtualMachine destination);
}

/// <summary>How the guest fared on the destination: still running, or how it died.</summary>
public sealed record GuestResumeReport(bool Survived, string Failure);

/// <summary>Pre-copy tuning: stop iterating at <paramref name="StopCopyPages"/> dirty pages or after <paramref name="MaxRounds"/> rounds.</summary>
public sealed record MigrationOptions(int MaxRounds = 8, int StopCopyPages = 4);

/// <summary>How a migration ended, from the VMM's point of view.</summary>
public enum MigrationOutcome
{
    /// <summary>A pre-check refused it; nothing was created on the destination (or it was torn down at once).</summary>
    Refused,

    /// <summary>A call on the destination (or the source's dirty logging) failed before switch-over; the guest stays on the source.</summary>
    SetupFailed,

    /// <summary>The guest switched over and then failed on the destination.</summary>
    FailedAfterSwitchover,

    /// <summary>The guest runs on the destination.</summary>
    Succeeded,
}

/// <summary>One pre-copy round: RAM pages sent (with data), zero pages sent as markers, and the pages the dirty log reported after it.</summary>
public sealed record PrecopyRoundReport(int Round, long PagesSent, long ZeroPages, long PagesDirtied);

/// <summary>How a device region's contents moved.</summary>
/// <param name="Copied">Whether bytes were copied (false for device registers).</param>
/// <param name="Bytes">Bytes the copy covers, read through the source mapping (the whole region for memory; the model skips reads that can only return zeros).</param>
/// <param name="PagesWithData">Pages that held non-zero data and were written to the destination.</param>
public sealed record DeviceCopyReport(string Region, bool Copied, string How, ulong Bytes, int PagesWithData)
{
    /// <summary>The region is memory but its copy failed (a mapping is gone): the migration must not switch over.</summary>
    public bool Failed { get; init; }
}

/// <summary>Everything a migration did.</summary>
public sealed record MigrationReport(
    MigrationOutcome Outcome,
    string Reason,
    string FailedCall,
    Errno Errno,
    StartReport? Destination,
    IReadOnlyList<PrecopyRoundReport> Rounds,
    IReadOnlyList<DeviceCopyReport> DeviceCopies,
    VirtualMachine? DestinationVm,
    GuestResumeReport? Resume);

/// <summary>
/// Live migration as QEMU does it: the destination VM and its memslots exist before the guest moves (incoming side);
/// RAM moves by pre-copy with dirty logging (KVM_MEM_LOG_DIRTY_PAGES + KVM_GET_DIRTY_LOG); device memory, which
/// cannot be dirty-logged (rule 6: LOG_DIRTY_PAGES on a VM_PFNMAP slot is EINVAL), is copied whole while the guest is
/// paused; then the guest switches over.
/// </summary>
public static class Migration
{
    private const int PAGE_SHIFT = 12;
    private const ulong PAGE_SIZE = 1UL << PAGE_SHIFT;

    public static MigrationReport Migrate(VirtualMachine source, VmmHost destination, VmmPolicy policy, IMigrationGuest guest, MigrationOptions options)
    {
        MigrationReport Report(MigrationOutcome o, string reason, string call = "", Errno e = Errno.None, StartReport? dest = null,
            IReadOnlyList<PrecopyRoundReport>? rounds = null, IReadOnlyList<DeviceCopyReport>? copies = null, VirtualMachine? vm = null, GuestResumeReport? resume = null) =>
            new(o, reason, call, e, dest, rounds ?? [], copies ?? [], vm, resume);

        StartReport? dest = null;

        // Anything on the source that fails before switch-over: dirty logging stops, the destination goes away, and the
        // guest runs on where it was.
        MigrationReport Abort(string reason, string call, Errno errno, List<PrecopyRoundReport>? rounds = null, List<DeviceCopyReport>? copies = null)
        {
            source.Paused = false;
            StopDirtyLogging(source);
            dest?.Vm?.Dispose();
            return Report(MigrationOutcome.SetupFailed, $"source: {reason}; the guest stays on the source", call, errno, dest, rounds, copies);
        }

        if (source.IsDestroyed)
            return Report(MigrationOutcome.Refused, "the VM is not running on the source");

        // 1. Incoming side: the destination VMM builds the VM and all its memslots before the guest moves.
        dest = Vmm.Start(destination, source.Config, policy);
        if (dest.Outcome == StartOutcome.Refused)
            return Report(MigrationOutcome.Refused, $"the destination VMM refused the incoming VM: {dest.Reason}", dest: dest);
        if (dest.Outcome == StartOutcome.Failed)
            return Report(MigrationOutcome.SetupFailed, $"destination: {dest.Reason}; the guest stays on the source", dest.FailedCall, dest.Errno, dest);
        var target = dest.Vm!;

        // 2. Dirty logging on the source's RAM slots (never on device slots: rule 6).
        foreach (var r in source.Regions.Where(r => r.Config.IsRam).ToList())
        {
            var e = source.SetSlotFlags(r, r.Flags | KvmMemFlags.LOG_DIRTY_PAGES);
            if (e != Errno.None)
            {
                return Abort($"enabling dirty logging on {r.Name} failed with {e}",
                    $"{(source.UsesRegion2 ? "KVM_SET_USER_MEMORY_REGION2" : "KVM_SET_USER_MEMORY_REGION")} slot {r.Slot} (LOG_DIRTY_PAGES)", e);
            }
        }

        // 3. Pre-copy: everything once, then what the dirty log reports, until it is small. One bitmap per RAM slot
        // holds the pages to send (KVM_GET_DIRTY_LOG's format), allocated once and reused every round.
        var rounds = new List<PrecopyRoundReport>();
        var ram = source.Regions.Where(r => r.Config.IsRam).Select(r => new RamPages(r.Name, r.Config.Size >> PAGE_SHIFT)).ToList();
        var buffers = new SendBuffers();
        var (sent, zero, sendError) = SendRam(source, target, ram, all: true, buffers);
        if (sendError is { } se)
            return Abort(se.Reason, "RAM pre-copy", se.Errno, rounds);
        int round = 1;
        while (true)
        {
            guest.RunDuringPrecopy(source, round);
            var logError = CollectDirty(source, ram, merge: false);
            if (logError is { } le)
                return Abort($"KVM_GET_DIRTY_LOG failed with {le.Errno}", $"KVM_GET_DIRTY_LOG slot {le.Slot}", le.Errno, rounds);

            long count = ram.Sum(r => r.Count());
            rounds.Add(new PrecopyRoundReport(round, sent, zero, count));
            if (count <= options.StopCopyPages || round >= options.MaxRounds)
                break; // these pages are sent with the final dirty log's, guest paused

            (sent, zero, sendError) = SendRam(source, target, ram, all: false, buffers);
            if (sendError is { } de)
                return Abort(de.Reason, "RAM pre-copy", de.Errno, rounds);
            round++;
        }

        // 4. Stop-and-copy: the guest is paused; the last dirty pages and all device memory move.
        source.Paused = true;
        var finalError = CollectDirty(source, ram, merge: true);
        if (finalError is { } fe)
            return Abort($"KVM_GET_DIRTY_LOG failed with {fe.Errno}", $"KVM_GET_DIRTY_LOG slot {fe.Slot}", fe.Errno, rounds);

        var (lastSent, lastZero, lastError) = SendRam(source, target, ram, all: false, buffers);
        if (lastError is { } fe2)
            return Abort(fe2.Reason, "RAM stop-and-copy", fe2.Errno, rounds);
        rounds.Add(new PrecopyRoundReport(0, lastSent, lastZero, 0));
        var copies = CopyDevices(source, target);
        // The VMM's access to a device mapping that is gone or unreadable faults: EFAULT, as copy_from_user reports.
        if (copies.FirstOrDefault(c => c.Failed) is { } bad)
            return Abort($"{bad.Region}: {bad.How}", $"device memory copy ({bad.Region})", Errno.EFAULT, rounds, copies);

        // 5. Switch-over: the source VM goes away; the guest runs on the destination.
        source.Dispose();
        var resume = guest.ResumeOn(target);
        return resume.Survived
            ? Report(MigrationOutcome.Succeeded, "", dest: dest, rounds: rounds, copies: copies, vm: target, resume: resume)
            : Report(MigrationOutcome.FailedAfterSwitchover, resume.Failure, dest: dest, rounds: rounds, copies: copies, vm: target, resume: resume);
    }

    /// <summary>A cancelled migration turns dirty logging off again on the source (QEMU: memory_global_dirty_log_stop).</summary>
    private static void StopDirtyLogging(VirtualMachine source)
    {
        foreach (var r in source.Regions.Where(r => (r.Flags & KvmMemFlags.LOG_DIRTY_PAGES) != 0).ToList())
            source.SetSlotFlags(r, r.Flags & ~KvmMemFlags.LOG_DIRTY_PAGES);
    }

    /// <summary>One RAM region's pages to send: a bitmap of npages bits, as KVM_GET_DIRTY_LOG fills it.</summary>
    private sealed class RamPages(string name, ulong npages)
    {
        public string Name { get; } = name;

        public ulong NPages { get; } = npages;

        /// <summary>The pages to send next.</summary>
        public ulong[] Bits { get; } = new ulong[(npages + 63) / 64];

        /// <summary>The final dirty log, merged into <see cref="Bits"/> (allocated at stop-and-copy only).</summary>
        public ulong[]? Final { get; set; }

        public long Count()
        {
            long n = 0;
            foreach (var w in Bits)
                n += System.Numerics.BitOperations.PopCount(w);
            return n;
        }
    }

    private readonly record struct LogError(uint Slot, Errno Errno);

    /// <summary>
    /// KVM_GET_DIRTY_LOG on every RAM slot: the pages (within each region) written since the last call, into
    /// <see cref="RamPages.Bits"/>; with <paramref name="merge"/> they are added to what is already there (the pages the
    /// last pre-copy round left unsent).
    /// </summary>
    private static LogError? CollectDirty(VirtualMachine vm, List<RamPages> ram, bool merge)
    {
        foreach (var pages in ram)
        {
            var r = vm.Region(pages.Name);
            var target = merge ? pages.Final ??= new ulong[pages.Bits.Length] : pages.Bits;
            var e = vm.Kvm.GetDirtyLog(r.Slot, target);
            if (e != Errno.None)
                return new LogError(r.Slot, e);
            if (merge)
            {
                for (int w = 0; w < target.Length; w++)
                    pages.Bits[w] |= target[w];
            }
        }

        return null;
    }

    /// <summary>Why a page could not be sent, with the errno the VMM saw.</summary>
    private readonly record struct SendFailure(string Reason, Errno Errno);

    /// <summary>Scratch space of <see cref="SendRam"/>, reused by every round.</summary>
    private sealed class SendBuffers
    {
        public const int ChunkPages = 4096;

        public byte[] Page { get; } = new byte[PAGE_SIZE];

        public byte[] Resident { get; } = new byte[ChunkPages];

        public byte[] One { get; } = new byte[1];

        /// <summary>The destination's residency of a run of zero pages.</summary>
        public byte[] DestResident { get; } = new byte[ChunkPages];

        /// <summary>Page offsets a sparse hint returned.</summary>
        public List<ulong> Offsets { get; } = [];

        /// <summary>Page offsets of the destination's pages a sparse hint returned.</summary>
        public List<ulong> DestOffsets { get; } = [];

        /// <summary>A page of zeros (never written).</summary>
        public static ReadOnlySpan<byte> ZeroPage => ZeroBytes;

        private static readonly byte[] ZeroBytes = new byte[PAGE_SIZE];
    }

    /// <summary>
    /// Sends RAM pages source -> destination through the two VMMs' mappings: every page (<paramref name="all"/>, the
    /// first round) or those set in each region's bitmap, which is cleared as it is sent. A page the source never
    /// populated (mincore(2) says not resident) or that holds only zeros is sent as a zero-page marker, as QEMU does
    /// (save_zero_page); the destination writes it only where its own page is populated (ram_handle_zero), since an
    /// unpopulated page reads as zeros already.
    /// </summary>
    private static (long Sent, long Zero, SendFailure? Error) SendRam(VirtualMachine source, VirtualMachine target, List<RamPages> ram, bool all, SendBuffers buffers)
    {
        long sent = 0, zero = 0;
        var from = source.Host.Memory;
        var to = target.Host.Memory;
        foreach (var pages in ram)
        {
            var src = source.Region(pages.Name);
            var dst = target.Region(pages.Name);
            if (all)
            {
                // mincore(2) a chunk at a time: a never-touched chunk costs one scan of its residency bytes.
                for (ulong first = 0; first < pages.NPages; first += SendBuffers.ChunkPages)
                {
                    var n = (int)Math.Min(SendBuffers.ChunkPages, pages.NPages - first);
                    var vec = buffers.Resident.AsSpan(0, n);
                    if (Mincore(from, pages.Name, src.Hva, src.Config.Gpa, first, n, vec) is { } me)
                        return (sent, zero, me);
                    var i = 0;
                    while (i < n)
                    {
                        var next = vec[i..].IndexOfAnyExcept((byte)0);
                        if (next < 0)
                        {
                            zero += n - i;
                            break;
                        }

                        zero += next;
                        i += next;
                        if (from is ISparseAddressSpace sparse)
                        {
                            // A run of resident pages: the hint says which may hold data; the others read as zeros
                            // (the same answer a read gives, without reading them).
                            var end = vec[i..].IndexOf((byte)0);
                            var run = end < 0 ? n - i : end;
                            if (SendRun(from, sparse, to, pages.Name, src.Hva, dst.Hva, first + (ulong)i, run, buffers, ref sent, ref zero) is { } re)
                                return (sent, zero, re);
                            i += run;
                            continue;
                        }

                        if (SendPage(from, to, pages.Name, src.Hva, dst.Hva, first + (ulong)i, buffers, ref sent, ref zero) is { } pe)
                            return (sent, zero, pe);
                        i++;
                    }
                }

                continue;
            }

            var bits = pages.Bits;
            for (int w = 0; w < bits.Length; w++)
            {
                while (bits[w] != 0)
                {
                    int b = System.Numerics.BitOperations.TrailingZeroCount(bits[w]);
                    bits[w] &= bits[w] - 1;
                    var page = ((ulong)w << 6) + (ulong)b;
                    var one = buffers.One.AsSpan();
                    if (Mincore(from, pages.Name, src.Hva, src.Config.Gpa, page, 1, one) is { } me)
                        return (sent, zero, me);
                    if ((one[0] & 1) == 0)
                    {
                        if (SendZero(to, pages.Name, dstHva: dst.Hva, page, buffers, ref zero) is { } ze)
                            return (sent, zero, ze);
                        continue;
                    }

                    if (SendPage(from, to, pages.Name, src.Hva, dst.Hva, page, buffers, ref sent, ref zero) is { } pe)
                        return (sent, zero, pe);
                }
            }
        }

        return (sent, zero, null);
    }

    /// <summary>
    /// mincore(2) of <paramref name="count"/> pages of a region (at <paramref name="hva"/>, guest-physical
    /// <paramref name="gpa"/>) from page <paramref name="first"/>.
    /// </summary>
    private static SendFailure? Mincore(IHostAddressSpace mm, string name, ulong hva, ulong gpa, ulong first, int count, Span<byte> vec)
    {
        var off = first << PAGE_SHIFT;
        var mc = mm.Residency(new Hva(hva + off), (ulong)count << PAGE_SHIFT, vec);
        if (mc == Errno.ENOMEM)
        {
            // A hole (mincore ENOMEM) is memory the VMM can no longer read: reading it would fail with EFAULT. mincore
            // says only that some page of the range is unmapped; ask page by page for the first one, and name it.
            Span<byte> one = stackalloc byte[1];
            for (var p = first; p < first + (ulong)count; p++)
            {
                if (mm.Residency(new Hva(hva + (p << PAGE_SHIFT)), PAGE_SIZE, one) == Errno.ENOMEM)
                {
                    off = p << PAGE_SHIFT;
                    break;
                }
            }

            return new($"{name}+0x{off:x} (GPA 0x{gpa + off:x}, HVA 0x{hva + off:x}): the source VMM has no mapping there (it unmapped guest RAM); the page cannot be sent", Errno.EFAULT);
        }

        return mc != Errno.None ? new($"{name}+0x{off:x}: mincore failed with {mc}", mc) : null;
    }

    /// <summary>
    /// Sends <paramref name="count"/> resident pages from <paramref name="page"/> with the model's sparse hint: the pages
    /// that may hold data are read and sent as <see cref="SendPage"/> does; the others hold only zeros and are sent as
    /// zero-page markers (<see cref="SendZeros"/>) without being read. Reading them would give the same bytes.
    /// </summary>
    private static SendFailure? SendRun(IHostAddressSpace from, ISparseAddressSpace sparse, IHostAddressSpace to, string name, ulong srcHva,
        ulong dstHva, ulong page, int count, SendBuffers buffers, ref long sent, ref long zero)
    {
        var off = page << PAGE_SHIFT;
        var data = buffers.Offsets;
        data.Clear();
        if (sparse.PagesThatMayHoldData(new Hva(srcHva + off), (ulong)count << PAGE_SHIFT, data) != Errno.None)
        {
            // Some page cannot be read: page by page, so the send stops at that page with the same pages sent.
            for (var i = 0; i < count; i++)
            {
                if (SendPage(from, to, name, srcHva, dstHva, page + (ulong)i, buffers, ref sent, ref zero) is { } pe)
                    return pe;
            }

            return null;
        }

        var next = page;
        foreach (var o in data)
        {
            var p = page + (o >> PAGE_SHIFT);
            if (p > next && SendZeros(to, name, dstHva, next, (int)(p - next), buffers, ref zero) is { } ze)
                return ze;
            if (SendPage(from, to, name, srcHva, dstHva, p, buffers, ref sent, ref zero) is { } pe)
                return pe;
            next = p + 1;
        }

        var last = page + (ulong)count;
        return last > next ? SendZeros(to, name, dstHva, next, (int)(last - next), buffers, ref zero) : null;
    }

    /// <summary>
    /// Zero-page markers for <paramref name="count"/> pages from <paramref name="page"/> (at most a chunk):
    /// <see cref="SendZero"/> for each. Where the destination offers the sparse hint, only its populated pages that may
    /// hold data are checked; every other page reads as zeros there already.
    /// </summary>
    private static SendFailure? SendZeros(IHostAddressSpace to, string name, ulong dstHva, ulong page, int count, SendBuffers buffers, ref long zero)
    {
        if (to is not ISparseAddressSpace sparse)
        {
            for (var i = 0; i < count; i++)
            {
                if (SendZero(to, name, dstHva, page + (ulong)i, buffers, ref zero) is { } ze)
                    return ze;
            }

            return null;
        }

        zero += count;
        var off = page << PAGE_SHIFT;
        var vec = buffers.DestResident.AsSpan(0, count);
        if (to.Residency(new Hva(dstHva + off), (ulong)count << PAGE_SHIFT, vec) is var de and not Errno.None)
            return new($"{name}+0x{off:x}: mincore on the destination failed with {de}", de);
        var i0 = 0;
        while (i0 < count)
        {
            var start = vec[i0..].IndexOfAnyExcept((byte)0);
            if (start < 0)
                break;
            i0 += start;
            var end = vec[i0..].IndexOf((byte)0);
            var run = end < 0 ? count - i0 : end;
            var runOff = (page + (ulong)i0) << PAGE_SHIFT;
            var held = buffers.DestOffsets;
            held.Clear();
            if (sparse.PagesThatMayHoldData(new Hva(dstHva + runOff), (ulong)run << PAGE_SHIFT, held) != Errno.None)
            {
                // Some page cannot be read: check every page of the run, so the failure is the same page's.
                held.Clear();
                for (var k = 0; k < run; k++)
                    held.Add((ulong)k << PAGE_SHIFT);
            }

            foreach (var o in held)
            {
                if (ClearIfNotZero(to, name, dstHva, page + (ulong)i0 + (o >> PAGE_SHIFT), buffers) is { } ce)
                    return ce;
            }

            i0 += run;
        }

        return null;
    }

    /// <summary>Sends one resident page: its data, or a zero-page marker when it holds only zeros.</summary>
    private static SendFailure? SendPage(IHostAddressSpace from, IHostAddressSpace to, string name, ulong srcHva, ulong dstHva, ulong page,
        SendBuffers buffers, ref long sent, ref long zero)
    {
        var off = page << PAGE_SHIFT;
        var buf = buffers.Page.AsSpan();
        if (from.Read(new Hva(srcHva + off), buf) is var re and not Errno.None)
            return new($"{name}+0x{off:x}: reading the source page failed with {re}", re);
        if (buf.IndexOfAnyExcept((byte)0) < 0)
            return SendZero(to, name, dstHva, page, buffers, ref zero);
        sent++;
        if (to.Write(new Hva(dstHva + off), buf) is var we and not Errno.None)
            return new($"{name}+0x{off:x}: writing the destination page failed with {we}", we);
        return null;
    }

    /// <summary>
    /// A zero-page marker. ram_handle_zero (QEMU migration/ram.c): the destination clears its page only if it does not
    /// read as zeros already. An unpopulated page reads as zeros, so it is left unpopulated (not read, which would
    /// fault it in).
    /// </summary>
    private static SendFailure? SendZero(IHostAddressSpace to, string name, ulong dstHva, ulong page, SendBuffers buffers, ref long zero)
    {
        zero++;
        var off = page << PAGE_SHIFT;
        var one = buffers.One.AsSpan();
        if (to.Residency(new Hva(dstHva + off), PAGE_SIZE, one) is var de and not Errno.None)
            return new($"{name}+0x{off:x}: mincore on the destination failed with {de}", de);
        return (one[0] & 1) == 0 ? null : ClearIfNotZero(to, name, dstHva, page, buffers);
    }

    /// <summary>ram_handle_zero on a populated destination page: if (!buffer_is_zero(page)) memset(page, 0).</summary>
    private static SendFailure? ClearIfNotZero(IHostAddressSpace to, string name, ulong dstHva, ulong page, SendBuffers buffers)
    {
        var off = page << PAGE_SHIFT;
        var buf = buffers.Page.AsSpan();
        if (to.Read(new Hva(dstHva + off), buf) is var re and not Errno.None)
            return new($"{name}+0x{off:x}: reading the destination page failed with {re}", re);
        if (buf.IndexOfAnyExcept((byte)0) < 0)
            return null;
        return to.Write(new Hva(dstHva + off), SendBuffers.ZeroPage) is var we and not Errno.None
            ? new($"{name}+0x{off:x}: clearing the destination page failed with {we}", we)
            : null;
    }

    /// <summary>
    /// Device regions at stop-and-copy: memory is read whole through the source VMM's mapping and written through the
    /// destination's (a page holding only zeros is written only where the destination page does not read as zero
    /// already); device registers are not memory and are left to the device's vfio migration driver. Where both
    /// address spaces offer <see cref="ISparseAddressSpace"/> (the model), only the pages that may hold data on either
    /// side are read: the result is the same as reading everything, and a missing or unreadable mapping on either side
    /// fails the copy just the same.
    /// </summary>
    private static List<DeviceCopyReport> CopyDevices(VirtualMachine source, VirtualMachine target)
    {
        var reports = new List<DeviceCopyReport>();
        var buf = new byte[PAGE_SIZE];
        var destBuf = new byte[PAGE_SIZE];
        var mmFrom = source.Host.Memory;
        var mmTo = target.Host.Memory;
        foreach (var from in source.Regions.Where(r => !r.Config.IsRam))
        {
            var to = target.Region(from.Name);
            if (from.IsDeviceRegisters)
            {
                reports.Add(new DeviceCopyReport(from.Name, false,
                    "device registers, not memory: the device's state moves with its vfio migration driver (VFIO_DEVICE_STATE_STOP_COPY), not through the VMM's mapping",
                    0, 0));
                continue;
            }

            int withData = 0;
            var size = from.Config.Size;
            var failed = false;
            // The destination's device memory is not necessarily zero (an earlier VM on that host used it): its pages
            // holding data are overwritten too, with zeros where the source has none.
            // Where a hint query fails, some page cannot be read or written: copy page by page instead, so that the
            // copy stops at the same page, with the same pages written, as without the hint.
            IEnumerable<ulong> offsets = EveryPage(size);
            HashSet<ulong>? destDirty = null;
            if (mmFrom is ISparseAddressSpace sparseFrom && mmTo is ISparseAddressSpace sparseTo)
            {
                var sourcePages = new List<ulong>();
                var destPages = new List<ulong>();
                if (sparseFrom.PagesThatMayHoldData(new Hva(from.Hva), size, sourcePages) == Errno.None &&
                    sparseTo.PagesThatMayHoldData(new Hva(to.Hva), size, destPages) == Errno.None)
                {
                    destDirty = destPages.ToHashSet();
                    offsets = sourcePages.Union(destPages).Order();
                }
            }

            foreach (var off in offsets)
            {
                if (failed)
                    break;
                var len = (int)Math.Min(PAGE_SIZE, size - off);
                var page = buf.AsSpan(0, len);
                if (mmFrom.Read(new Hva(from.Hva + off), page) != Errno.None)
                {
                    failed = true;
                    break;
                }

                bool zero = page.IndexOfAnyExcept((byte)0) < 0;
                if (zero)
                {
                    bool destZero;
                    if (destDirty is not null)
                    {
                        destZero = !destDirty.Contains(off);
                    }
                    else
                    {
                        var d = destBuf.AsSpan(0, len);
                        if (mmTo.Read(new Hva(to.Hva + off), d) != Errno.None)
                        {
                            failed = true;
                            break;
                        }

                        destZero = d.IndexOfAnyExcept((byte)0) < 0;
                    }

                    if (destZero)
                        continue;
                }

                if (mmTo.Write(new Hva(to.Hva + off), page) != Errno.None)
                {
                    failed = true;
                    break;
                }

                if (!zero)
                    withData++;
            }

            reports.Add(new DeviceCopyReport(from.Name, !failed,
                failed
                    ? "copy through the VMMs' mappings FAILED (a mapping is gone): the device memory did not move"
                    : "cannot be dirty-logged (VM_PFNMAP, rule 6): copied whole through the VMMs' mappings during stop-and-copy, guest paused",
                size, withData)
            { Failed = failed });
        }

        return reports;
    }

    private static IEnumerable<ulong> EveryPage(ulong size)
    {
        for (ulong off = 0; off < size; off += PAGE_SIZE)
            yield return off;
    }
}
