using System.Buffers.Binary;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Linux.Native;

namespace S2Lab.Linux;

/// <summary>
/// <see cref="IGuestLoader"/> for real vCPUs: assembles a <see cref="GuestProgram"/> into machine code in the code
/// page, writes it through the VMM's own mapping and points the vCPU at it. The first half of the code page holds the
/// code (<see cref="CodeBytes"/>), the second the values the loads read (8 bytes each, in program order), which the
/// guest stores there and <see cref="LoadedValues"/> reads back.
/// <list type="bullet">
/// <item>x86_64: real mode. KVM_SET_SREGS puts CS at the code page (selector = IPA >> 4, so the code page must lie
/// below 1 MiB) and gives DS a 4 GiB limit ("unreal mode"), so a 32-bit address reaches any IPA below 4 GiB.
/// A store is two <c>mov dword [addr], imm32</c>; a load is <c>mov eax, [addr]</c> then <c>mov [slot], eax</c>, twice;
/// the program ends with <c>hlt</c> (KVM_EXIT_HLT). KVM_SET_REGS sets RIP = 0, RFLAGS = 2 (interrupts off).</item>
/// <item>arm64: KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT with PSCI 0.2, PC = the code page, PSTATE = EL1h with
/// DAIF masked (MMU off: data accesses are Device-nGnRnE, so they must be 8-byte aligned). A store is MOVZ/MOVK of
/// the address and value then STR; a load is LDR then STR to the slot; the program ends with HVC PSCI SYSTEM_OFF
/// (KVM_EXIT_SYSTEM_EVENT). This path is not exercised on the x86_64 machine the tests run on.</item>
/// </list>
/// Fetch ops are EINVAL on both: the real guest would need code at the fetched address. So is what the guest's own
/// translation regime would have to express: a stage-1 attribute other than Normal write-back (<see cref="GuestOp.Mair"/>
/// 0xFF; x86_64 real mode has no page tables and its memory is write-back, and the arm64 code builds no page tables
/// either) and an SCTLR_EL1 setting other than M, C and I clear (<see cref="GuestProgram.Sctlr"/>; x86_64 has no such
/// register, its real mode has translation off, and the arm64 code does not yet write it). <see cref="LastRefusal"/>
/// says why the last load was refused.
/// </summary>
public sealed class LinuxGuestLoader(IHostAddressSpace memory, KvmArch arch) : IGuestLoader
{
    /// <summary>Bytes of the code page the code may use; the rest holds the loaded values.</summary>
    public const int CodeBytes = 0x800;

    private const int PageBytes = 0x1000;
    private readonly Dictionary<IKvmVcpu, (Hva Slots, int Loads)> _loaded = new(ReferenceEqualityComparer.Instance);

    /// <summary>Why the last <see cref="Load"/> returned EINVAL, in words; null when it did not.</summary>
    public string? LastRefusal { get; private set; }

    /// <inheritdoc/>
    public KvmExitReason EndExit => arch == KvmArch.X86_64 ? KvmExitReason.Hlt : KvmExitReason.SystemEvent;

    /// <summary>
    /// Assembles, writes and points the vCPU at the program. EBADF for a vCPU that is not a real one; EINVAL (with
    /// <see cref="LastRefusal"/>) for a code page that is not page aligned (or, on x86_64, not below 1 MiB), a fetch, a
    /// stage-1 attribute other than 0xFF, an SCTLR_EL1 setting (on arm64: other than all off), an address the
    /// architecture's code cannot reach (x86_64: at or above 4 GiB; arm64: not 8-byte aligned), or a program whose
    /// code or loaded values do not fit in the code page; else the errno of the write or the register ioctls.
    /// </summary>
    public Errno Load(IKvmVcpu vcpu, Hva codeHva, ulong codeIpa, GuestProgram program)
    {
        LastRefusal = null;
        if (vcpu is not LinuxKvmVcpu cpu)
            return Errno.EBADF;
        if (Refusal(program, codeIpa) is { } why)
        {
            LastRefusal = why;
            return Errno.EINVAL;
        }

        var code = new byte[CodeBytes];
        var slot = codeIpa + CodeBytes;
        int loads = 0;
        int length = arch == KvmArch.X86_64
            ? AssembleX86(program, codeIpa, code, ref loads)
            : AssembleArm64(program, slot, code, ref loads);
        if (length < 0 || loads * 8 > PageBytes - CodeBytes)
        {
            LastRefusal = $"the program's code or its loaded values do not fit in the code page ({CodeBytes} bytes of code)";
            return Errno.EINVAL;
        }
        var page = new byte[PageBytes];
        code.AsSpan(0, length).CopyTo(page);
        if (memory.Write(codeHva, page) is var we and not Errno.None)
            return we;
        var e = arch == KvmArch.X86_64 ? PointX86(cpu, codeIpa) : PointArm64(cpu, codeIpa);
        if (e != Errno.None)
            return e;
        _loaded[vcpu] = (codeHva + CodeBytes, loads);
        return Errno.None;
    }

    /// <summary>Why the program cannot run as this loader writes code, or null when it can.</summary>
    private string? Refusal(GuestProgram program, ulong codeIpa)
    {
        if ((codeIpa & (PageBytes - 1)) != 0)
            return $"the code page IPA 0x{codeIpa:x} is not page aligned";
        if (arch == KvmArch.X86_64 && codeIpa >= 1UL << 20)
            return $"the code page IPA 0x{codeIpa:x} is not below 1 MiB (x86_64 real mode)";
        if (program.Sctlr is { } sctlr)
        {
            // x86_64 real mode has paging off, the state SCTLR_EL1 with M, C and I clear names (the memory type then comes
            // from the MTRRs, write-back, where arm64 would use Device-nGnRnE for data: outcomes compare, types do not).
            if (arch == KvmArch.X86_64 && sctlr != SctlrEl1.None)
                return $"SCTLR_EL1 ({sctlr}) is an arm64 register: an x86_64 guest has none, and real mode has translation off";
            // KVM_ARM_VCPU_INIT resets SCTLR_EL1 with M, C and I clear: that state needs no code, any other would.
            if (sctlr != SctlrEl1.None)
                return $"SCTLR_EL1 ({sctlr}) is not written by this loader: its guest runs with the MMU and caches off, as KVM_ARM_VCPU_INIT leaves them";
        }

        for (int i = 0; i < program.Ops.Count; i++)
        {
            var op = program.Ops[i];
            if (op.Kind == GuestOpKind.Fetch)
                return $"op {i}: an instruction fetch needs code at IPA 0x{op.Ipa:x}, which the loader does not write";
            if (op.Mair != 0xFF)
            {
                return $"op {i}: the stage-1 attribute MAIR 0x{op.Mair:X2} needs guest page tables, which this loader does not build " +
                       (arch == KvmArch.X86_64 ? "(x86_64 real mode: memory is write-back)" : "(arm64 with the MMU off)");
            }

            if (arch == KvmArch.X86_64 && op.Ipa > (1UL << 32) - 8)
                return $"op {i}: IPA 0x{op.Ipa:x} is not below 4 GiB (x86_64 unreal mode)";
            if (arch != KvmArch.X86_64 && (op.Ipa & 7) != 0)
                return $"op {i}: IPA 0x{op.Ipa:x} is not 8-byte aligned (arm64 with the MMU off: Device memory)";
        }

        return null;
    }

    /// <summary>The loaded values read back from the code page's second half (zeros for loads that did not run).</summary>
    public IReadOnlyList<ulong> LoadedValues(IKvmVcpu vcpu)
    {
        if (!_loaded.TryGetValue(vcpu, out var l))
            return [];
        var bytes = new byte[l.Loads * 8];
        if (memory.Read(l.Slots, bytes) != Errno.None)
            return [];
        var values = new ulong[l.Loads];
        for (int i = 0; i < values.Length; i++)
            values[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8));
        return values;
    }

    /// <summary>x86_64 real-mode code; its length, or -1 when the program cannot be expressed or does not fit.</summary>
    private static int AssembleX86(GuestProgram program, ulong codeIpa, byte[] code, ref int loads)
    {
        if (codeIpa >= 1UL << 20)
            return -1;
        int at = 0;
        bool Emit(ReadOnlySpan<byte> opcode, ulong disp, uint? imm)
        {
            if (at + opcode.Length + 4 + (imm is null ? 0 : 4) > code.Length)
                return false;
            opcode.CopyTo(code.AsSpan(at));
            at += opcode.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(at), (uint)disp);
            at += 4;
            if (imm is { } i)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(at), i);
                at += 4;
            }

            return true;
        }

        // 0x66 0x67: 32-bit operand and address size in 16-bit code; ModRM 0x05 = [disp32].
        ReadOnlySpan<byte> movMemImm = [0x66, 0x67, 0xC7, 0x05], movEaxMem = [0x66, 0x67, 0x8B, 0x05], movMemEax = [0x66, 0x67, 0x89, 0x05];
        foreach (var op in program.Ops)
        {
            if (op.Kind == GuestOpKind.Fetch || op.Ipa > (1UL << 32) - 8)
                return -1;
            for (uint half = 0; half < 2; half++)
            {
                var ok = op.Kind == GuestOpKind.Store
                    ? Emit(movMemImm, op.Ipa + (4 * half), (uint)(op.Value >> (int)(32 * half)))
                    : Emit(movEaxMem, op.Ipa + (4 * half), null) && Emit(movMemEax, codeIpa + CodeBytes + ((ulong)loads * 8) + (4 * half), null);
                if (!ok)
                    return -1;
            }

            if (op.Kind == GuestOpKind.Load)
                loads++;
        }

        if (at >= code.Length)
            return -1;
        code[at++] = 0xF4; // hlt
        return at;
    }

    /// <summary>arm64 code (X0 = address, X1 = data, X2 = slot); its length, or -1.</summary>
    private static int AssembleArm64(GuestProgram program, ulong slot, byte[] code, ref int loads)
    {
        var words = new List<uint>();
        void Mov(int rd, ulong value)
        {
            words.Add(0xD2800000u | (uint)((value & 0xFFFF) << 5) | (uint)rd); // MOVZ Xd, #imm16
            for (int hw = 1; hw < 4; hw++)
                words.Add(0xF2800000u | ((uint)hw << 21) | (uint)(((value >> (16 * hw)) & 0xFFFF) << 5) | (uint)rd); // MOVK
        }

        foreach (var op in program.Ops)
        {
            if (op.Kind == GuestOpKind.Fetch || (op.Ipa & 7) != 0)
                return -1;
            Mov(0, op.Ipa);
            if (op.Kind == GuestOpKind.Store)
            {
                Mov(1, op.Value);
                words.Add(0xF9000000u | (0u << 5) | 1u); // STR X1, [X0]
            }
            else
            {
                words.Add(0xF9400000u | (0u << 5) | 1u); // LDR X1, [X0]
                Mov(2, slot + ((ulong)loads * 8));
                words.Add(0xF9000000u | (2u << 5) | 1u); // STR X1, [X2]
                loads++;
            }
        }

        Mov(0, 0x8400_0008); // PSCI_0_2_FN_SYSTEM_OFF
        words.Add(0xD4000002u); // HVC #0
        if (words.Count * 4 > code.Length)
            return -1;
        for (int i = 0; i < words.Count; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(i * 4), words[i]);
        return words.Count * 4;
    }

    private static unsafe Errno PointX86(LinuxKvmVcpu cpu, ulong codeIpa)
    {
        KvmSregsNative sregs;
        if (LibC.Ioctl(cpu.Fd, KvmIoctls.GET_SREGS, &sregs) < 0)
            return LinuxErrno.Last();
        byte* b = sregs.Bytes;
        var cs = KvmSregsNative.Segment(0);
        *(ulong*)(b + cs + KvmSregsNative.SegBase) = codeIpa;
        *(ushort*)(b + cs + KvmSregsNative.SegSelector) = (ushort)(codeIpa >> 4);
        var ds = KvmSregsNative.Segment(1);
        *(ulong*)(b + ds + KvmSregsNative.SegBase) = 0;
        *(ushort*)(b + ds + KvmSregsNative.SegSelector) = 0;
        *(uint*)(b + ds + KvmSregsNative.SegLimit) = 0xFFFF_FFFF;
        b[ds + KvmSregsNative.SegG] = 1;
        if (LibC.Ioctl(cpu.Fd, KvmIoctls.SET_SREGS, &sregs) < 0)
            return LinuxErrno.Last();
        KvmRegsNative regs = default;
        regs.Regs[KvmRegsNative.Rip] = 0;
        regs.Regs[KvmRegsNative.Rflags] = 2; // bit 1 is reserved and reads as 1
        return LibC.Ioctl(cpu.Fd, KvmIoctls.SET_REGS, &regs) < 0 ? LinuxErrno.Last() : Errno.None;
    }

    private const ulong CoreReg = 0x6030_0000_0010_0000; // KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE
    private const ulong PcReg = CoreReg | (256 / 4); // offsetof(struct kvm_regs, regs.pc) / 4
    private const ulong PstateReg = CoreReg | (264 / 4); // offsetof(struct kvm_regs, regs.pstate) / 4

    private static unsafe Errno PointArm64(LinuxKvmVcpu cpu, ulong codeIpa)
    {
        KvmVcpuInitNative init;
        if (LibC.Ioctl(cpu.VmFd, KvmIoctls.ARM_PREFERRED_TARGET, &init) < 0)
            return LinuxErrno.Last();
        init.Features[0] |= 1u << 2; // KVM_ARM_VCPU_PSCI_0_2
        if (LibC.Ioctl(cpu.Fd, KvmIoctls.ARM_VCPU_INIT, &init) < 0)
            return LinuxErrno.Last();
        ulong pc = codeIpa, pstate = 0x3C5; // PSR_MODE_EL1h | PSR_{D,A,I,F}_BIT
        var one = new KvmOneRegNative { Id = PcReg, Addr = (ulong)&pc };
        if (LibC.Ioctl(cpu.Fd, KvmIoctls.SET_ONE_REG, &one) < 0)
            return LinuxErrno.Last();
        one = new KvmOneRegNative { Id = PstateReg, Addr = (ulong)&pstate };
        return LibC.Ioctl(cpu.Fd, KvmIoctls.SET_ONE_REG, &one) < 0 ? LinuxErrno.Last() : Errno.None;
    }
}
