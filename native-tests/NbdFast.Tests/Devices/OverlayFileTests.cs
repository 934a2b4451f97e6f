using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary>
/// The copy-on-write overlay file, both ways it can be made: O_TMPFILE and the create-then-unlink fallback.
/// Either way the directory stays empty, the file is sparse and sized to the device, and closing it leaves
/// no descriptor behind.
/// </summary>
public sealed class OverlayFileTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Overlay_IsNamelessSparseAndReadable(bool tryAnonymous)
    {
        using var temp = new TempDirectory();
        const long Size = 1L << 40; // a terabyte costs nothing while unwritten
        var overlay = OverlayFile.Create(temp.FullPath, Size, tryAnonymous);
        try
        {
            // On this machine's temp filesystem O_TMPFILE works; the fallback is what the other row tests.
            Assert.Equal(tryAnonymous, overlay.Anonymous);
            Assert.Empty(Directory.EnumerateFileSystemEntries(temp.FullPath));
            Assert.Single(OpenFilesUnder(temp.FullPath));
            Assert.True(overlay.AllocatedBytes < 1 << 20, $"a fresh overlay holds {overlay.AllocatedBytes} bytes");

            byte[] data = [1, 2, 3, 4, 5];
            await overlay.WriteAsync(Size - 5, data);
            byte[] back = new byte[10];
            await overlay.ReadAsync(Size - 10, back);
            Assert.Equal([0, 0, 0, 0, 0, 1, 2, 3, 4, 5], back);
            await overlay.SyncAsync();
        }
        finally
        {
            overlay.Dispose();
        }
        Assert.Empty(OpenFilesUnder(temp.FullPath));
    }

    internal static IEnumerable<string> OpenFilesUnder(string directory) =>
        Directory.EnumerateFileSystemEntries("/proc/self/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Where(target => target is not null && target.StartsWith(directory + "/", StringComparison.Ordinal))
            .Select(target => target!);
}
