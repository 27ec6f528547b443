namespace S2Lab.Lab.Tests;

/// <summary>Edits of scenario text made by tests, which must actually change the text.</summary>
internal static class TextEdit
{
    /// <summary>
    /// <paramref name="text"/> with every occurrence of <paramref name="old"/> replaced (ordinal). Fails the test when
    /// <paramref name="old"/> does not occur: a fixture that drifted (the demo changed, a line was reworded) would
    /// otherwise run the unedited scenario and pass or fail for the wrong reason.
    /// </summary>
    public static string Edit(this string text, string old, string replacement)
    {
        Assert.False(string.IsNullOrEmpty(old), "an edit needs the text it replaces");
        Assert.True(text.Contains(old, StringComparison.Ordinal), $"the text to replace is not in the fixture (did it drift?): {old}");
        var edited = text.Replace(old, replacement, StringComparison.Ordinal);
        Assert.NotEqual(text, edited);
        return edited;
    }
}
