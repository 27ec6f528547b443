namespace S2Lab.Lab.Scenarios;

/// <summary>One problem in a scenario file: where it is, which field, and what is wrong.</summary>
public sealed record ScenarioError(string File, SourceMark At, string Field, string Message)
{
    /// <summary>The compiler-style form: <c>file:line:column: field: message</c>.</summary>
    public override string ToString() =>
        Field.Length == 0 ? $"{File}:{At.Line}:{At.Column}: {Message}" : $"{File}:{At.Line}:{At.Column}: {Field}: {Message}";
}

/// <summary>Thrown by <see cref="ScenarioLoader"/> when a scenario file is invalid; carries every error found.</summary>
public sealed class ScenarioException : Exception
{
    public ScenarioException(IReadOnlyList<ScenarioError> errors)
        : base(string.Join(Environment.NewLine, errors.Select(e => e.ToString())))
    {
        Errors = errors;
    }

    public IReadOnlyList<ScenarioError> Errors { get; }
}
