using System.Text.Json;
using S2Lab.Kernel.Kvm;
using S2Lab.Lab.Replay;

namespace S2Lab.Lab.Tests;

/// <summary>Host profiles (s2lab probe output, docs/host-profile.md) applied to the model's memslot profile.</summary>
public class ReplayHostProfileTests
{
    private static KvmProfile? Apply(string json, out string? error)
    {
        using var doc = JsonDocument.Parse(json);
        return HostProfileFile.TryApply(doc.RootElement, "h.json", out error);
    }

    [Fact]
    public void A_probed_x86_host_sets_slots_address_spaces_guest_memfd_and_the_gpa_limit()
    {
        var p = Apply("""
            {"format":"s2lab-host-profile/1","host":{"arch":"x86_64"},
             "memslots":{"max_gpa_bits":46},
             "derived":{"user_memslots":509,"address_spaces":2,"guest_memfd":false}}
            """, out var error);
        Assert.Null(error);
        Assert.Equal(KvmProfile.X86_64 with { UserMemSlots = 509, AddressSpaces = 2, GuestMemfd = false, X86MaxGpaBits = 46 }, p);
    }

    [Fact]
    public void Absent_or_null_fields_keep_the_architecture_defaults()
    {
        var p = Apply("""{"format":"s2lab-host-profile/1","host":{"arch":"arm64"},"memslots":null,"derived":{"guest_memfd":null}}""", out _);
        Assert.Equal(KvmProfile.Arm64, p);
    }

    [Fact]
    public void The_gpa_limit_only_applies_to_x86()
    {
        var p = Apply("""{"format":"s2lab-host-profile/1","host":{"arch":"arm64"},"memslots":{"max_gpa_bits":40}}""", out _);
        Assert.Equal(KvmProfile.Arm64.X86MaxGpaBits, p!.X86MaxGpaBits);
    }

    [Theory]
    [InlineData("""{"host":{"arch":"x86_64"}}""", "'format'")]
    [InlineData("""{"format":"s2lab-host-profile/2","host":{"arch":"x86_64"}}""", "'format'")]
    [InlineData("""{"format":"s2lab-host-profile/1","host":{"arch":"riscv64"}}""", "'host.arch'")]
    [InlineData("""{"format":"s2lab-host-profile/1","host":{"arch":"x86_64"},"derived":{"user_memslots":"many"}}""", "'derived.user_memslots'")]
    [InlineData("""{"format":"s2lab-host-profile/1","host":{"arch":"x86_64"},"derived":{"user_memslots":40000}}""", "'derived.user_memslots'")]
    [InlineData("""{"format":"s2lab-host-profile/1","host":{"arch":"x86_64"},"derived":{"address_spaces":0}}""", "'derived.address_spaces'")]
    [InlineData("""{"format":"s2lab-host-profile/1","host":{"arch":"x86_64"},"memslots":{"max_gpa_bits":99}}""", "'memslots.max_gpa_bits'")]
    public void A_bad_profile_names_the_file_and_field(string json, string field)
    {
        Assert.Null(Apply(json, out var error));
        Assert.StartsWith("h.json: field " + field, error);
    }

    [Fact]
    public void An_unreadable_or_invalid_file_is_an_error_naming_it()
    {
        Assert.Null(HostProfileFile.TryLoad("/nonexistent/h.json", out var error));
        Assert.StartsWith("/nonexistent/h.json: cannot read", error);
        var tmp = Path.GetTempFileName();
        try
        {
            File.WriteAllText(tmp, "{not json");
            Assert.Null(HostProfileFile.TryLoad(tmp, out error));
            Assert.StartsWith($"{tmp}:1:2: not valid JSON", error);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
