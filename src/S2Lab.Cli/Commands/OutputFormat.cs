using System.CommandLine;

namespace S2Lab.Cli.Commands;

/// <summary>
/// The one output-format option of every command: <c>--format table|json</c> (and <c>markdown</c> where a command
/// has it); <c>table</c>, the text for people, is the default. Checked by the command (exit 2 with the list of formats),
/// so that a bad value is reported like every other bad argument.
/// </summary>
internal static class OutputFormat
{
    public const string Table = "table";
    public const string Json = "json";
    public const string Markdown = "markdown";

    /// <summary>The option, offering <paramref name="formats"/> (the first is the default).</summary>
    public static Option<string> Create(params string[] formats) => new("--format")
    {
        Description = $"Output format: {string.Join(", ", formats)} (default {formats[0]}).",
        DefaultValueFactory = _ => formats[0],
    };

    /// <summary>The format given, or null after writing an error when it is not one of <paramref name="formats"/>.</summary>
    public static string? Get(ParseResult parse, Option<string> option, TextWriter error, string command, params string[] formats)
    {
        var value = parse.GetValue(option) ?? formats[0];
        if (formats.Contains(value, StringComparer.Ordinal))
            return value;
        error.WriteLine($"s2lab {command}: --format must be {string.Join(", ", formats[..^1])} or {formats[^1]} (got '{value}')");
        return null;
    }
}
