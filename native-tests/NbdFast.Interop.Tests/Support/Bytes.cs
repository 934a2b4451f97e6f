namespace NbdFast.Interop.Tests.Support;

public static class Bytes
{
    /// <summary>Compares two images, reporting the first differing offset rather than dumping megabytes.</summary>
    public static void AssertSame(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int common = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(common == expected.Length, $"images differ first at byte {common}");
    }
}
