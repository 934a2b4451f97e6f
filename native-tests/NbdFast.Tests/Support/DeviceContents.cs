using NbdFast.Devices;

namespace NbdFast.Tests.Support;

/// <summary>Compares what a device or file holds with expected bytes, reporting the first difference.</summary>
public static class DeviceContents
{
    /// <summary>Reads the whole device.</summary>
    public static async Task<byte[]> ReadAllAsync(IBlockDevice device)
    {
        byte[] contents = new byte[checked((int)device.Size)];
        const int Step = 4 * 1024 * 1024;
        for (int offset = 0; offset < contents.Length; offset += Step)
        {
            await device.ReadAsync(offset, contents.AsMemory(offset, Math.Min(Step, contents.Length - offset)));
        }
        return contents;
    }

    /// <summary>Writes deterministic pseudo-random bytes over the whole device and returns them.</summary>
    public static async Task<byte[]> FillRandomAsync(IBlockDevice device, int seed)
    {
        byte[] contents = new byte[checked((int)device.Size)];
        new Random(seed).NextBytes(contents);
        await device.WriteAsync(0, contents, WriteFlags.None);
        return contents;
    }

    /// <summary>Fails unless <paramref name="actual"/> equals <paramref name="expected"/>, naming the first differing offset.</summary>
    public static void AssertEqual(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        int mismatch = expected.CommonPrefixLength(actual);
        Assert.True(mismatch == expected.Length,
            mismatch == expected.Length ? string.Empty : $"{what}: first difference at offset {mismatch} (0x{mismatch:x}): got 0x{actual[mismatch]:x2}, expected 0x{expected[mismatch]:x2}");
    }

    /// <summary>Fails unless the two files hold the same bytes.</summary>
    public static async Task AssertFilesEqualAsync(string expectedPath, string actualPath)
    {
        byte[] expected = await File.ReadAllBytesAsync(expectedPath);
        byte[] actual = await File.ReadAllBytesAsync(actualPath);
        AssertEqual(expected, actual, $"{actualPath} vs {expectedPath}");
    }

    /// <summary>Fails unless the device holds exactly the bytes of <paramref name="expectedPath"/>.</summary>
    public static async Task AssertDeviceEqualsFileAsync(IBlockDevice device, string expectedPath)
    {
        byte[] expected = await File.ReadAllBytesAsync(expectedPath);
        byte[] actual = await ReadAllAsync(device);
        AssertEqual(expected, actual, $"device contents vs {expectedPath}");
    }
}
