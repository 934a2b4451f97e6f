using System.Text;

namespace NbdFast.Negotiation;

/// <summary>Decodes and checks client strings, and makes them safe to echo in messages and logs.</summary>
internal static class ClientText
{
    private const int EchoLimit = 80;
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Decodes a spec string: at most 4096 bytes, valid UTF-8, no NUL. Returns null when it is not one.</summary>
    public static string? TryDecode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > Protocol.NbdLimits.MaxStringLength || bytes.Contains((byte)0))
        {
            return null;
        }
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>A bounded, printable rendering of client input for error messages and logs.</summary>
    public static string Echo(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, EchoLimit) + 8);
        foreach (char c in text)
        {
            if (builder.Length >= EchoLimit)
            {
                builder.Append("...");
                break;
            }
            builder.Append(char.IsControl(c) ? '?' : c);
        }
        return builder.ToString();
    }
}
