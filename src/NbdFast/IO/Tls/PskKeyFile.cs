using System.Globalization;

namespace NbdFast.IO.Tls;

/// <summary>
/// The pre-shared-key file nbdkit, qemu and libnbd use (GnuTLS psktool format): one <c>identity:hexkey</c>
/// per line. Blank lines are ignored; anything else that is malformed is refused with the line number.
/// </summary>
public static class PskKeyFile
{
    /// <summary>Reads and parses <paramref name="path"/>.</summary>
    /// <exception cref="FormatException">A line is malformed, an identity repeats, or the file holds no key.</exception>
    public static IReadOnlyDictionary<string, byte[]> Load(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>Parses the text of a psk file; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="FormatException">A line is malformed, an identity repeats, or the text holds no key.</exception>
    public static IReadOnlyDictionary<string, byte[]> Parse(string text, string source = "psk file")
    {
        ArgumentNullException.ThrowIfNull(text);
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            int number = i + 1;
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new FormatException($"{source}:{number}: expected 'identity:hexkey'");
            }
            string identity = line[..colon];
            string hex = line[(colon + 1)..].Trim();
            if (System.Text.Encoding.UTF8.GetByteCount(identity) > 255)
            {
                throw new FormatException($"{source}:{number}: the identity is longer than 255 bytes");
            }
            if (hex.Length == 0 || hex.Length % 2 != 0 || !hex.All(Uri.IsHexDigit))
            {
                throw new FormatException($"{source}:{number}: the key of '{identity}' is not hex (an even number of 0-9, a-f digits)");
            }
            byte[] key = Convert.FromHexString(hex);
            if (key.Length > OpenSslNative.PSK_MAX_PSK_LEN)
            {
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"{source}:{number}: the key of '{identity}' is longer than {OpenSslNative.PSK_MAX_PSK_LEN} bytes"));
            }
            if (!keys.TryAdd(identity, key))
            {
                throw new FormatException($"{source}:{number}: the identity '{identity}' appears twice");
            }
        }
        if (keys.Count == 0)
        {
            throw new FormatException($"{source}: holds no 'identity:hexkey' line");
        }
        return keys;
    }
}
