namespace S2Lab.Cli;

/// <summary>The exit codes of every s2lab command, in one place.</summary>
internal static class ExitCodes
{
    /// <summary>Success (and, for run/demo, every expectation held).</summary>
    public const int Ok = 0;

    /// <summary>run/demo: an expectation failed; memslots replay: a result differed from the file's expect values.</summary>
    public const int ExpectationFailed = 1;

    /// <summary>Bad input: arguments, or a malformed file (the message names file, line and field).</summary>
    public const int BadInput = 2;

    /// <summary>probe and the kernel backend: /dev/kvm is missing, not accessible, or of an architecture S2Lab does not model.</summary>
    public const int NoKvm = 3;

    /// <summary>An exception escaped the model: a bug in S2Lab (EX_SOFTWARE).</summary>
    public const int InternalError = 70;
}
