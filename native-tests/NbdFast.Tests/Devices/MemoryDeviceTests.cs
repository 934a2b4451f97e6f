using System.Runtime.InteropServices;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Devices;

/// <summary>
/// <see cref="MemoryDevice"/> on its own: memory is committed where written and handed back where trimmed (seen
/// as the kernel's mincore(2) reports it), zeroing keeps the bytes around it, holes follow whole
/// trimmed chunks, a device far larger than RAM works, and a disposed device gives its memory back.
/// </summary>
public sealed class MemoryDeviceTests
{
    private const int Page = 4096;

    [Fact]
    public async Task Trim_HandsTheWrittenPagesBackAndReadsZeroes()
    {
        const int written = 4 << 20;
        var device = new MemoryDevice(8 << 20);
        device.Write(0, Pattern(written, seed: 3));
        Assert.True(ResidentBytes(device) >= written, $"resident {ResidentBytes(device)} after writing {written}");
        Assert.Equal(written, device.CommittedBytes);

        await device.TrimAsync(0, written, WriteFlags.None);

        Assert.True(ResidentBytes(device) < MemoryDevice.ChunkSize, $"resident {ResidentBytes(device)} after the trim");
        Assert.Equal(0, device.CommittedBytes);
        var back = new byte[written];
        device.Read(0, back);
        Assert.All(back, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(100, 2 * Page + 50)]            // partial pages at both ends, one whole page inside
    [InlineData(Page, Page)]                    // exactly one page
    [InlineData(10, 20)]                        // inside one page
    [InlineData(MemoryDevice.ChunkSize - 7, 3 * Page)]  // across a chunk boundary
    public async Task WriteZeroes_ZeroesExactlyTheRange(int offset, int length)
    {
        int size = 2 * MemoryDevice.ChunkSize;
        var device = new MemoryDevice(size);
        byte[] data = Pattern(size, seed: 7);
        device.Write(0, data);

        await device.WriteZeroesAsync(offset, length, WriteFlags.None);

        var back = new byte[size];
        device.Read(0, back);
        for (int i = 0; i < size; i++)
        {
            byte expected = i >= offset && i < offset + length ? (byte)0 : data[i];
            Assert.True(expected == back[i], $"byte {i}: {back[i]}, expected {expected}");
        }
    }

    [Theory]
    [InlineData(4096, 1 << 20)]
    [InlineData(12345, (3 << 20) + 777)]   // copied in pieces: neither end on a piece boundary
    public void LargeWrite_ReadsBackExactly_AndTouchesNothingAround(int offset, int length)
    {
        var device = new MemoryDevice(8 << 20);
        byte[] data = Pattern(length, seed: offset);
        device.Write(offset, data);

        // One byte either side of the write, which must still be zero.
        var back = new byte[length + 2];
        device.Read(offset - 1, back);
        Assert.Equal(0, back[0]);
        Assert.Equal(0, back[^1]);
        Assert.True(data.AsSpan().SequenceEqual(back.AsSpan(1, length)), "the bytes read back differ from those written");
    }

    [Fact]
    public async Task Extents_HoleOnlyWhereAWholeChunkWasNeverWrittenOrTrimmedWhole()
    {
        const int chunk = MemoryDevice.ChunkSize;
        var device = new MemoryDevice(4 * chunk);
        device.Write(0, Pattern(4 * chunk, seed: 1));
        await device.TrimAsync(chunk, chunk, WriteFlags.None);                      // whole: a hole
        await device.TrimAsync(2 * chunk + Page, Page, WriteFlags.None);            // partial: still data
        await device.WriteZeroesAsync(3 * chunk, chunk, WriteFlags.NoHole);         // NO_HOLE: still data

        var extents = new BlockExtent[8];
        int count = await device.GetExtentsAsync(0, 4 * chunk, extents);

        Assert.Equal(
            new[]
            {
                new BlockExtent(chunk, ExtentState.Data),
                new BlockExtent(chunk, ExtentState.Hole | ExtentState.Zero),
                new BlockExtent(2 * chunk, ExtentState.Data),
            },
            extents[..count]);
        Assert.Equal(3 * chunk, device.CommittedBytes);
    }

    [Fact]
    public async Task ADeviceFarLargerThanMemory_CostsOnlyWhatIsWritten()
    {
        const long size = 1L << 42;   // 4 TiB of address space on a machine with far less RAM
        var device = new MemoryDevice(size);
        byte[] data = Pattern(Page, seed: 9);
        device.Write(size - Page, data);

        var back = new byte[Page];
        device.Read(size - Page, back);
        Assert.Equal(data, back);
        device.Read(size / 2, back);
        Assert.All(back, b => Assert.Equal(0, b));
        Assert.Equal(MemoryDevice.ChunkSize, device.CommittedBytes);
        Assert.True(ResidentBytes(device, size - (64 << 20), 64 << 20) <= MemoryDevice.ChunkSize, "resident at the end");
        var extents = new BlockExtent[4];
        int count = await device.GetExtentsAsync(size - 2 * MemoryDevice.ChunkSize, 2 * MemoryDevice.ChunkSize, extents);
        Assert.Equal(
            new[] { new BlockExtent(MemoryDevice.ChunkSize, ExtentState.Hole | ExtentState.Zero), new BlockExtent(MemoryDevice.ChunkSize, ExtentState.Data) },
            extents[..count]);
    }

    [Fact]
    public async Task Dispose_GivesTheMemoryBackAndLaterUseThrows()
    {
        var device = new MemoryDevice(4 << 20);
        device.Write(0, Pattern(2 << 20, seed: 5));
        Assert.True(ResidentBytes(device) >= 2 << 20);

        await device.DisposeAsync();

        Assert.True(ResidentBytes(device) < MemoryDevice.ChunkSize, $"resident {ResidentBytes(device)} after dispose");
        Assert.Throws<ObjectDisposedException>(() => device.Read(0, new byte[Page]));
        Assert.Throws<ObjectDisposedException>(() => device.Write(0, new byte[Page]));
        await device.DisposeAsync();   // twice is harmless
    }

    [Fact]
    public void EmptyDevice_Works()
    {
        var device = new MemoryDevice(0);
        device.Read(0, Span<byte>.Empty);
        device.Write(0, ReadOnlySpan<byte>.Empty);
        Assert.Equal(0, device.CommittedBytes);
        Assert.Throws<BlockDeviceException>(() => device.Read(0, new byte[1]));
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        // No zero bytes, so a zeroed byte can never pass for data.
        for (int i = 0; i < data.Length; i++)
        {
            data[i] |= 1;
        }
        return data;
    }

    /// <summary>How much of the device's memory is resident, as the kernel's mincore(2) sees it.</summary>
    private static long ResidentBytes(MemoryDevice device, long offset = 0, long length = -1)
    {
        length = length < 0 ? device.Size : length;
        var pages = new byte[(length + Page - 1) / Page];
        nint start = device.Region.DangerousGetHandle() + (nint)offset;
        Assert.Equal(0, Mincore(start, (nuint)length, pages));
        return pages.Count(p => (p & 1) != 0) * (long)Page;
    }

    [DllImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static extern int Mincore(nint address, nuint length, byte[] pages);
}
