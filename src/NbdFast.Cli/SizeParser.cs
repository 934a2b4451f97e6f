using System.Globalization;

namespace NbdFast.Cli;

/// <summary>Parses sizes such as <c>512</c>, <c>64K</c>, <c>1G</c> or <c>2T</c> (binary units, optional trailing B/iB).</summary>
internal static class SizeParser
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        string s = text.Trim();
        if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase)) s = s[..^2];
        else if (s.Length > 1 && char.IsLetter(s[^2]) && (s[^1] is 'B' or 'b')) s = s[..^1];
        if (s.Length == 0) return false;
        int shift = char.ToUpperInvariant(s[^1]) switch
        {
            'K' => 10,
            'M' => 20,
            'G' => 30,
            'T' => 40,
            'P' => 50,
            _ => 0,
        };
        if (shift != 0) s = s[..^1];
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value < 0)
        {
            return false;
        }
        if (value > (long.MaxValue >> shift))
        {
            return false;
        }
        bytes = value << shift;
        return true;
    }
}
