using System.CommandLine;
using System.Text;
using System.Text.Json;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Replay;
using S2Lab.Linux;

namespace S2Lab.Cli.Commands;

/// <summary><c>s2lab probe</c>: what the real KVM on this machine says, and a host profile for scenario files.</summary>
internal static class ProbeCommand
{

    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "The KVM device to open.", DefaultValueFactory = _ => LinuxKvmSystem.DefaultPath };
        var format = OutputFormat.Create(OutputFormat.Table, OutputFormat.Json);
        format.Description += " json prints the host profile instead of the text report.";
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Also write the host profile (JSON, docs/host-profile.md) to this file." };
        var cmd = new Command("probe", "Ask the real KVM on this machine (/dev/kvm) for its API version, capabilities and memslot limits.")
        {
            device, format, output,
        };
        cmd.SetAction(parse =>
        {
            var cfg = parse.InvocationConfiguration;
            if (OutputFormat.Get(parse, format, cfg.Error, "probe", OutputFormat.Table, OutputFormat.Json) is not { } fmt)
                return ExitCodes.BadInput;
            return Run(parse.GetValue(device)!, fmt == OutputFormat.Json, parse.GetValue(output), cfg.Output, cfg.Error);
        });
        return cmd;
    }

    internal static int Run(string device, bool asJson, FileInfo? output, TextWriter stdout, TextWriter stderr)
    {
        // A directory opens with EISDIR, which the model's errno set does not name: say it in words first.
        var kvm = Directory.Exists(device) ? Errno.ENOTTY : LinuxKvmSystem.Open(device);
        if (!kvm.IsOk)
        {
            var why = kvm.Error switch
            {
                Errno.ENOENT when device == LinuxKvmSystem.DefaultPath => "it does not exist (no KVM on this machine, or the kvm module is not loaded)",
                Errno.ENOENT => "it does not exist",
                Errno.ENOTTY when Directory.Exists(device) => "it is a directory, not the KVM device",
                Errno.ENOTTY => $"it is not a KVM device (KVM_GET_API_VERSION does not answer {LinuxKvmSystem.ApiVersion}; a regular file or another device)",
                Errno.EACCES or Errno.EPERM => "permission denied (add yourself to the 'kvm' group, or run as root)",
                Errno.EOPNOTSUPP => $"this machine's architecture ({LinuxHostInfo.Read() switch { { IsOk: true } h => h.Value.Machine, _ => "unknown" }}) is not one S2Lab models (x86_64, aarch64)",
                Errno.ENOSYS => "this is not a Linux host",
                var e => $"open failed with {ErrnoText.Format(e)}",
            };
            stderr.WriteLine($"s2lab probe: cannot use {device}: {why}. No host profile was written.");
            return ExitCodes.NoKvm;
        }
        HostProfile profile;
        using (kvm.Value)
            profile = KvmProbe.Probe(kvm.Value);

        var text = HostProfileJson.Write(profile);
        if (output is not null)
        {
            try
            {
                File.WriteAllText(output.FullName, text);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"s2lab probe: cannot write {output.FullName}: {e.Message}");
                return ExitCodes.BadInput;
            }
        }
        if (asJson)
            stdout.Write(text);
        else
            Rendering.ReportTables.WriteWrapped(stdout, Report(profile), Rendering.ReportTables.WidthFor(stdout));
        return 0;
    }

    private static string Report(HostProfile p)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"KVM at {p.DevicePath}: API version {p.ApiVersion}");
        sb.AppendLine($"Host: {p.Host.SysName} {p.Host.Release} on {p.Host.Machine} (S2Lab arch {ArchName(p.Host.Arch)}), page size {p.PageSize}");
        if (p.VmCreateError != Errno.None)
            sb.AppendLine($"KVM_CREATE_VM failed: {ErrnoText.Format(p.VmCreateError)}; the VM column is empty.");
        sb.AppendLine();
        sb.AppendLine($"{"cap",4}  {"name",-40} {"system fd",12} {"VM fd",12}");
        foreach (var c in p.Caps)
            sb.AppendLine($"{c.Number,4}  {c.Name,-40} {c.System,12} {(c.Vm?.ToString() ?? "-"),12}");
        if (p.Memslots is { } m)
        {
            sb.AppendLine();
            sb.AppendLine("Memslot limits measured on scratch VMs:");
            sb.AppendLine($"  a one-page slot is accepted up to GPA 2^{m.MaxGpaBits}; past it: {ErrnoText.Format(m.BeyondGpaError)}");
            sb.AppendLine($"  slot id NR_MEMSLOTS-1: {ErrnoText.Format(m.LastUserSlotError)}; slot id NR_MEMSLOTS: {ErrnoText.Format(m.FirstBadSlotError)}");
            sb.AppendLine($"  KVM_CREATE_GUEST_MEMFD(4096, 0): {ErrnoText.Format(m.GuestMemfdPlain)}; with GUEST_MEMFD_FLAG_MMAP: {ErrnoText.Format(m.GuestMemfdMmap)}");
        }
        var cap243 = p.Cap(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED);
        sb.AppendLine();
        sb.AppendLine(p.Host.Arch == KvmArch.Arm64
            ? $"Cacheable PFNMAP (cap 243 on a VM fd): {cap243} -> {(cap243 is { IsOk: true, Value: > 0 } ? "supported (FWB and DIC)" : "not supported")}"
            : $"Cacheable PFNMAP (cap 243) is an arm64 question; this {p.Host.Machine} KVM answers {cap243} (an unknown cap reads 0).");
        return sb.ToString();
    }

    internal static string ArchName(KvmArch? arch) => arch switch
    {
        KvmArch.Arm64 => "arm64",
        KvmArch.X86_64 => "x86_64",
        _ => "unknown",
    };
}

/// <summary>The host profile JSON (format "s2lab-host-profile/1", documented in docs/host-profile.md).</summary>
internal static class HostProfileJson
{
    /// <summary>The format name the readers check (<see cref="S2Lab.Lab.Replay.HostProfileFile"/>).</summary>
    public const string Format = S2Lab.Lab.Replay.HostProfileFile.Format;

    public static string Write(HostProfile p)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteStartObject("host");
            w.WriteString("arch", ProbeCommand.ArchName(p.Host.Arch));
            w.WriteString("machine", p.Host.Machine);
            w.WriteString("sysname", p.Host.SysName);
            w.WriteString("kernel_release", p.Host.Release);
            w.WriteString("kernel_version", p.Host.Version);
            w.WriteNumber("page_size", p.PageSize);
            w.WriteEndObject();

            w.WriteStartObject("kvm");
            w.WriteString("device", p.DevicePath);
            w.WriteNumber("api_version", p.ApiVersion);
            w.WriteString("create_vm", ErrnoText.Format(p.VmCreateError));
            w.WriteEndObject();

            w.WriteStartArray("caps");
            foreach (var c in p.Caps)
            {
                w.WriteStartObject();
                w.WriteNumber("number", c.Number);
                w.WriteString("name", c.Name);
                WriteAnswer(w, "system", c.System);
                if (c.Vm is { } vm)
                    WriteAnswer(w, "vm", vm);
                else
                    w.WriteNull("vm");
                w.WriteEndObject();
            }
            w.WriteEndArray();

            if (p.Memslots is { } m)
            {
                w.WriteStartObject("memslots");
                w.WriteNumber("max_gpa_bits", m.MaxGpaBits);
                w.WriteString("beyond_gpa", ErrnoText.Format(m.BeyondGpaError));
                w.WriteString("last_user_slot", ErrnoText.Format(m.LastUserSlotError));
                w.WriteString("first_bad_slot", ErrnoText.Format(m.FirstBadSlotError));
                w.WriteString("create_guest_memfd", ErrnoText.Format(m.GuestMemfdPlain));
                w.WriteString("create_guest_memfd_mmap", ErrnoText.Format(m.GuestMemfdMmap));
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("memslots");
            }

            // What a scenario file reads: the facts S2Lab's model is parameterised by.
            w.WriteStartObject("derived");
            WriteBoolCap(w, "supports_cacheable_pfnmap", p.Host.Arch == KvmArch.Arm64 ? p.Cap(KvmCap.ARM_CACHEABLE_PFNMAP_SUPPORTED) : null);
            WriteBoolCap(w, "guest_memfd", p.Cap(KvmCap.GUEST_MEMFD));
            WriteBoolCap(w, "readonly_mem", p.Cap(KvmCap.READONLY_MEM));
            WriteBoolCap(w, "user_memory2", p.Cap(KvmCap.USER_MEMORY2));
            WriteNumberCap(w, "user_memslots", p.Cap(KvmCap.NR_MEMSLOTS));
            WriteNumberCap(w, "address_spaces", p.Cap(KvmCap.MULTI_ADDRESS_SPACE), orElse: 1);
            WriteNumberCap(w, "guest_memfd_flags", p.Cap(KvmCap.GUEST_MEMFD_FLAGS), orElse: 0);
            if (p.Host.Arch == KvmArch.Arm64)
                WriteNumberCap(w, "max_ipa_bits", p.Cap(KvmCap.ARM_VM_IPA_SIZE));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WriteAnswer(Utf8JsonWriter w, string name, CapAnswer a)
    {
        w.WriteStartObject(name);
        if (a.IsOk)
            w.WriteNumber("value", a.Value);
        else
            w.WriteString("errno", ErrnoText.Format(a.Error));
        w.WriteEndObject();
    }

    private static void WriteBoolCap(Utf8JsonWriter w, string name, CapAnswer? a)
    {
        if (a is { IsOk: true } ok)
            w.WriteBoolean(name, ok.Value > 0);
        else
            w.WriteNull(name);
    }

    private static void WriteNumberCap(Utf8JsonWriter w, string name, CapAnswer? a, long? orElse = null)
    {
        if (a is { IsOk: true } ok && (ok.Value > 0 || orElse is null))
            w.WriteNumber(name, ok.Value);
        else if (orElse is { } d)
            w.WriteNumber(name, d);
        else
            w.WriteNull(name);
    }
}
