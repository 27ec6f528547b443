using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Lab.Runner;

namespace S2Lab.Lab.Tests;

/// <summary>The words reports use for values: one format each, and each one reads back.</summary>
public class LabTextTests
{
    [Fact]
    public void Success_is_ok_and_an_errno_is_the_kernel_name()
    {
        Assert.Equal("ok", LabText.Errno(Errno.None));
        Assert.Equal("EINVAL", LabText.Errno(Errno.EINVAL));
        Assert.Equal("EFAULT", LabText.Errno(Errno.EFAULT));
    }

    [Fact]
    public void Every_errno_text_reads_back_as_the_same_errno()
    {
        foreach (var e in Enum.GetValues<Errno>().Append((Errno)4095))
        {
            Assert.True(LabText.TryParseErrno(LabText.Errno(e), out var back), e.ToString());
            Assert.Equal(e, back);
        }

        Assert.False(LabText.TryParseErrno("0", out _));
        Assert.False(LabText.TryParseErrno("einval", out _));
    }
}
