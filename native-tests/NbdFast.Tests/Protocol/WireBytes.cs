namespace NbdFast.Tests.Protocol;

/// <summary>
/// Helpers for the byte-vector tests: expected wire images are written by hand as hex (big-endian, as the
/// spec lays the fields out) and compared with what an encoder wrote into a sentinel-filled buffer.
/// </summary>
internal static class WireBytes
{
    /// <summary>Byte every test buffer is pre-filled with, so over-long writes are detected.</summary>
    public const byte Sentinel = 0xA5;

    /// <summary>Parses hand-written hex; spaces, underscores and line breaks are ignored.</summary>
    public static byte[] Hex(string hex)
    {
        var digits = new System.Text.StringBuilder(hex.Length);
        foreach (char c in hex)
        {
            if (!char.IsWhiteSpace(c) && c != '_')
            {
                digits.Append(c);
            }
        }
        return Convert.FromHexString(digits.ToString());
    }

    /// <summary>Concatenates byte arrays (hex pieces and ASCII strings).</summary>
    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>The bytes of an ASCII string, for the readable parts of a message.</summary>
    public static byte[] Ascii(string text) => System.Text.Encoding.ASCII.GetBytes(text);

    /// <summary>A buffer of <paramref name="size"/> bytes, every one set to <see cref="Sentinel"/>.</summary>
    public static byte[] NewBuffer(int size = 512)
    {
        var buffer = new byte[size];
        Array.Fill(buffer, Sentinel);
        return buffer;
    }

    /// <summary>
    /// Asserts that the encoder returned <paramref name="expected"/>.Length, wrote exactly those bytes at the
    /// start of <paramref name="buffer"/>, and left everything after them untouched.
    /// </summary>
    public static void AssertWritten(byte[] expected, byte[] buffer, int returned)
    {
        Assert.Equal(expected.Length, returned);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(buffer, 0, returned));
        for (int i = returned; i < buffer.Length; i++)
        {
            Assert.True(buffer[i] == Sentinel, $"byte {i} beyond the {returned}-byte message was overwritten (0x{buffer[i]:X2})");
        }
    }
}
