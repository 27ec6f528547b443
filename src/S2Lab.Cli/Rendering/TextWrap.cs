using System.Text;

namespace S2Lab.Cli.Rendering;

/// <summary>
/// Word wrapping that never cuts an identifier: lines break at spaces, and a word too long for the line breaks after
/// one of its separators (<see cref="Separators"/>, '(' included: <c>MT_S2_FWB_DEVICE_nGnRE</c> and <c>gpu0.usemem</c> stay whole,
/// <c>flag=prefer-migratable</c> may break after '=' or '-'). Only a run of identifier characters longer than the whole
/// width is cut, as the last resort that keeps every line within the width.
/// </summary>
internal static class TextWrap
{
    /// <summary>Characters a line may break after (besides spaces, where it breaks and drops the space).</summary>
    public const string Separators = "/,-=|;:+(";

    /// <summary>Wraps <paramref name="text"/> (each '\n' starts a new line) to lines of at most <paramref name="width"/> characters, none ending in a space.</summary>
    public static List<string> Wrap(string text, int width) => Wrap(text, width, width);

    /// <summary>As <see cref="Wrap(string, int)"/>, with every line after the first at most <paramref name="restWidth"/> wide (a hanging indent).</summary>
    public static List<string> Wrap(string text, int firstWidth, int restWidth)
    {
        firstWidth = Math.Max(1, firstWidth);
        // A hanging indent only narrows: continuation lines are never wider than the first.
        restWidth = Math.Clamp(restWidth, 1, firstWidth);
        var lines = new List<string>();
        foreach (var paragraph in text.Split('\n'))
            WrapParagraph(paragraph, lines.Count == 0 ? firstWidth : restWidth, restWidth, lines);
        return lines;
    }

    /// <summary>The identifier-like tokens of <paramref name="text"/>: what is left between spaces and separators.</summary>
    public static IEnumerable<string> Tokens(string text) =>
        text.Split([' ', '\n', .. Separators], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The longest space-delimited word: the narrowest width at which no word has to break.</summary>
    public static int LongestWord(string text) =>
        text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(w => w.Length).DefaultIfEmpty(0).Max();

    /// <summary>The width of the widest line of <paramref name="text"/> unwrapped.</summary>
    public static int Natural(string text) => text.Split('\n').Max(l => l.TrimEnd().Length);

    private static void WrapParagraph(string text, int firstWidth, int restWidth, List<string> lines)
    {
        var width = firstWidth;
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            lines.Add("");
            return;
        }

        var line = new StringBuilder();
        foreach (var word in words)
        {
            var joined = line.Length == 0 ? word.Length : line.Length + 1 + word.Length;
            if (joined <= width)
            {
                if (line.Length > 0)
                    line.Append(' ');
                line.Append(word);
                continue;
            }

            if (word.Length <= restWidth)
            {
                lines.Add(line.ToString());
                width = restWidth;
                line.Clear().Append(word);
                continue;
            }

            // A word longer than a line: break it after its separators, filling lines as far as they go.
            var first = true;
            foreach (var piece in Pieces(word, restWidth))
            {
                var gap = first && line.Length > 0 ? 1 : 0;
                if (line.Length + gap + piece.Length <= width)
                {
                    if (gap == 1)
                        line.Append(' ');
                    line.Append(piece);
                }
                else
                {
                    if (line.Length > 0)
                    {
                        lines.Add(line.ToString());
                        width = restWidth;
                    }

                    line.Clear().Append(piece);
                }

                first = false;
            }
        }

        lines.Add(line.ToString());
    }

    /// <summary>A word cut after each separator; a piece still longer than <paramref name="width"/> is cut at the width.</summary>
    private static IEnumerable<string> Pieces(string word, int width)
    {
        var start = 0;
        for (var i = 0; i < word.Length; i++)
        {
            if (Separators.Contains(word[i]) || i == word.Length - 1)
            {
                for (var at = start; at <= i;)
                {
                    var length = Math.Min(width, i + 1 - at);
                    yield return word.Substring(at, length);
                    at += length;
                }

                start = i + 1;
            }
        }
    }
}
