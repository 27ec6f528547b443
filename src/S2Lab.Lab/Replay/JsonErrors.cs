using System.Text.Json;

namespace S2Lab.Lab.Replay;

/// <summary>One form for System.Text.Json's syntax errors: <c>file:line:column: field 'a.b': not valid JSON: why</c>.</summary>
internal static class JsonErrors
{
    /// <summary>The located message for <paramref name="e"/> (the reader counts lines and bytes from 0; editors from 1).</summary>
    public static string Format(string file, JsonException e)
    {
        var at = e.LineNumber is { } line ? $":{line + 1}:{(e.BytePositionInLine ?? 0) + 1}" : "";
        var field = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? $" field '{p[2..]}':" : "";
        return $"{file}{at}:{field} not valid JSON: {FirstSentence(e.Message)}";
    }

    /// <summary>The first sentence of a System.Text.Json message (the rest repeats the path and position).</summary>
    public static string FirstSentence(string message)
    {
        var i = message.IndexOf(". ", StringComparison.Ordinal);
        return i < 0 ? message.TrimEnd('.') : message[..i];
    }
}
