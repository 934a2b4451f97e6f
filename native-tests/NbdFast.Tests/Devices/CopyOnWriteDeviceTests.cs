using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary>
/// <see cref="CopyOnWriteDevice"/> on its own: argument checks, every operation against a byte-array model
/// (sub-cluster and unaligned writes, copy-up from the base and from zeroed clusters, trims, zeroes, the short
/// last cluster), block status merged from the overlay map and the base, and a base that is only ever read.
/// </summary>
public sealed class CopyOnWriteDeviceTests
{
    private const int Cluster = 4096;
    // Not a multiple of the cluster size: the last cluster is short.
    private const int Size = 64 * 1024 * 4 + 1000;

    [Theory]
    [InlineData(0)]
    [InlineData(256)]
    [InlineData(1000)]
    [InlineData(4 * 1024 * 1024)]
    [InlineData(-4096)]
    public void Constructor_BadClusterSize_Throws(int clusterSize)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CopyOnWriteDevice(new MemoryDevice(Size), clusterSize: clusterSize));
        Assert.Equal("clusterSize", e.ParamName);
    }

    [Fact]
    public void Constructor_ClusterBelowTheBaseMinimumBlock_Throws()
    {
        var constrained = new RecordingDevice(new MemoryDevice(Size), new BlockSizeConstraints(8192, 8192, 1 << 20));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CopyOnWriteDevice(constrained, clusterSize: 4096));
        Assert.Contains("8192", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_MissingBaseOrDirectory_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => new CopyOnWriteDevice(null!));
        using var temp = new TempDirectory();
        Assert.Throws<DirectoryNotFoundException>(() => new CopyOnWriteDevice(new MemoryDevice(Size), temp.File("missing")));
    }

    [Fact]
    public async Task CapabilitiesAndSize_WritableWhateverTheBase()
    {
        using var temp = new TempDirectory();
        await using var file = FileDevice.Open(temp.CreateRandomFile("base.img", Size, seed: 5), readOnly: true);
        await using var cow = new CopyOnWriteDevice(file, temp.FullPath);
        Assert.Equal(Size, cow.Size);
        Assert.Equal(CopyOnWriteDevice.DefaultClusterSize, cow.ClusterSize);
        Assert.Equal(file.BlockSize, cow.BlockSize);
        var expected = BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
            BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.BlockStatus |
            BlockDeviceCapabilities.MultiConn | BlockDeviceCapabilities.Cache;
        Assert.Equal(expected, cow.Capabilities);
    }

    [Fact]
    public async Task Overlay_HasNoNameAndIsClosedOnDispose()
    {
        using var temp = new TempDirectory();
        var cow = new CopyOnWriteDevice(new MemoryDevice(Size), temp.FullPath, clusterSize: Cluster);
        await cow.WriteAsync(100, new byte[20000], WriteFlags.Fua);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.FullPath));
        // The open file is there, in that directory, but only through our descriptor.
        Assert.Single(OpenFilesUnder(temp.FullPath));
        await cow.DisposeAsync();
        Assert.Empty(OpenFilesUnder(temp.FullPath));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await cow.ReadAsync(0, new byte[1]));
    }

    [Fact]
    public async Task Operations_MatchAModel_AndTheBaseIsOnlyRead()
    {
        (RecordingDevice recorder, byte[] original) = await CreateBaseAsync(seed: 7);
        using var temp = new TempDirectory();
        await using var cow = new CopyOnWriteDevice(recorder, temp.FullPath, clusterSize: Cluster);
        byte[] model = (byte[])original.Clone();
        var random = new Random(8);
        await AssertMatchesAsync(cow, model, "fresh");

        async Task Write(long offset, int length, WriteFlags flags = WriteFlags.None)
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            await cow.WriteAsync(offset, data, flags);
            data.CopyTo(model, offset);
            await AssertMatchesAsync(cow, model, $"write {offset}+{length}");
        }
        async Task Zero(long offset, int length, bool trim, WriteFlags flags = WriteFlags.None)
        {
            if (trim)
            {
                await cow.TrimAsync(offset, length, flags);
            }
            else
            {
                await cow.WriteZeroesAsync(offset, length, flags);
            }
            Array.Clear(model, (int)offset, length);
            await AssertMatchesAsync(cow, model, $"{(trim ? "trim" : "zero")} {offset}+{length}");
        }

        await Write(100, 10);                       // sub-cluster, copy-up from the base
        await Write(200, 50);                       // same cluster, now in the overlay
        await Write(3 * Cluster - 7, 2 * Cluster + 20, WriteFlags.Fua); // unaligned, four clusters, two partial
        await Write(8 * Cluster, 3 * Cluster);      // whole clusters, no copy-up
        await Zero(10 * Cluster + 5, 100, trim: false);   // partial zero of an overlay cluster
        await Zero(12 * Cluster + 5, 100, trim: false);   // partial zero of a base cluster: copy-up
        await Zero(14 * Cluster, 2 * Cluster, trim: false);            // whole clusters: hole
        await Zero(16 * Cluster, Cluster, trim: false, WriteFlags.NoHole | WriteFlags.FastZero); // allocated zero
        await Zero(18 * Cluster - 10, Cluster + 20, trim: true);       // trim across a boundary: zeroes exactly
        await Zero(8 * Cluster, Cluster, trim: true, WriteFlags.Fua);  // trim of an overlay cluster
        await Write(14 * Cluster + 33, 66);         // copy-up from a zeroed cluster
        await Write(Size - 10, 10);                 // the short last cluster
        await Write(Size - 1000 - 3, 500);          // straddling into it
        await Zero(Size - 1000, 1000, trim: false); // the whole short cluster
        await Write(20 * Cluster, 0);               // empty write
        await cow.FlushAsync();
        await Write(0, Size);                       // everything, finally
        await Zero(0, Size, trim: true);

        Assert.Empty(recorder.CallsOtherThan("read", "extents", "cache"));
        await CopyOnWriteDeviceTests.AssertHoldsAsync(recorder, original, "the base after all that");
    }

    [Fact]
    public async Task Extents_MergeOverlayStatesWithTheBase()
    {
        // 64 KiB memory chunks: chunk 0 and 3 hold data, 1 and 2 are holes.
        var memory = new MemoryDevice(256 * 1024);
        await memory.WriteAsync(0, new byte[] { 1 }, WriteFlags.None);
        await memory.WriteAsync(3 * 65536, new byte[] { 1 }, WriteFlags.None);
        var recorder = new RecordingDevice(memory);
        using var temp = new TempDirectory();
        await using var cow = new CopyOnWriteDevice(recorder, temp.FullPath, clusterSize: Cluster);
        BlockExtent[] extents = new BlockExtent[16];

        Assert.Equal([Data(65536), HoleZero(131072), Data(65536)], await ExtentsAsync(cow, 0, 262144, extents));

        await cow.WriteAsync(65536 + 100, new byte[10], WriteFlags.None);               // cluster 16 -> overlay data
        await cow.WriteZeroesAsync(2 * 65536, Cluster, WriteFlags.NoHole);               // cluster 32 -> allocated zero
        await cow.TrimAsync(0, Cluster, WriteFlags.None);                                // cluster 0 -> hole
        await cow.WriteZeroesAsync(3 * 65536 + Cluster, 2 * Cluster, WriteFlags.None);   // clusters 49-50 -> hole
        Assert.Equal(
            [HoleZero(Cluster), Data(65536), HoleZero(65536 - Cluster), Zero(Cluster), HoleZero(65536 - Cluster), Data(Cluster), HoleZero(2 * Cluster), Data(65536 - 3 * Cluster)],
            await ExtentsAsync(cow, 0, 262144, extents));

        // A query inside a run, and one with room for a single extent (which still takes in a neighbour of its kind).
        Assert.Equal([Data(65536 - 5), HoleZero(5)], await ExtentsAsync(cow, Cluster + 5, 65536, extents));
        BlockExtent[] one = new BlockExtent[1];
        int count = await cow.GetExtentsAsync(Cluster, 262144 - Cluster, one);
        Assert.Equal([Data(65536)], one[..count]);

        // Beyond the device: refused.
        var e = await Assert.ThrowsAsync<BlockDeviceException>(async () => await cow.GetExtentsAsync(262144 - 1, 2, extents));
        Assert.Equal(NbdError.Invalid, e.Error);
    }

    [Fact]
    public async Task Extents_OfABaseWithoutBlockStatus_AreData()
    {
        using var temp = new TempDirectory();
        await using var cow = new CopyOnWriteDevice(new PlainDevice(65536), temp.FullPath, clusterSize: Cluster);
        Assert.Equal(BlockDeviceCapabilities.None, cow.Capabilities & (BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.Rotational));
        await cow.TrimAsync(Cluster, Cluster, WriteFlags.None);
        Assert.Equal([Data(Cluster), HoleZero(Cluster), Data(65536 - 2 * Cluster)], await ExtentsAsync(cow, 0, 65536, new BlockExtent[8]));
        await cow.CacheAsync(0, 65536); // the base cannot cache: nothing happens
    }

    [Fact]
    public async Task Cache_PassesToTheBase_AndOutOfRangeIsRefused()
    {
        (RecordingDevice recorder, _) = await CreateBaseAsync(seed: 9);
        using var temp = new TempDirectory();
        await using var cow = new CopyOnWriteDevice(recorder, temp.FullPath, clusterSize: Cluster);
        await cow.CacheAsync(4096, 8192);
        Assert.Equal([new DeviceCall("cache", 4096, 8192)], recorder.Calls);

        foreach (Func<ValueTask> refused in new Func<ValueTask>[]
        {
            () => cow.ReadAsync(Size - 1, new byte[2]),
            () => cow.WriteAsync(Size, new byte[1], WriteFlags.None),
            () => cow.TrimAsync(-1, 2, WriteFlags.None),
            () => cow.WriteZeroesAsync(1, long.MaxValue, WriteFlags.None),
            () => cow.CacheAsync(Size, 1),
        })
        {
            var e = await Assert.ThrowsAsync<BlockDeviceException>(async () => await refused());
            Assert.Equal(NbdError.Invalid, e.Error);
        }
        Assert.Single(recorder.Calls);
    }

    [Fact]
    public async Task WholeClusterTrim_GivesTheOverlaySpaceBack()
    {
        using var temp = new TempDirectory();
        await using var cow = new CopyOnWriteDevice(new MemoryDevice(8 * 1024 * 1024), temp.FullPath);
        byte[] data = new byte[4 * 1024 * 1024];
        new Random(10).NextBytes(data);
        await cow.WriteAsync(1024 * 1024, data, WriteFlags.None);
        await cow.FlushAsync();
        long written = cow.Overlay.AllocatedBytes;
        Assert.True(written >= data.Length, $"overlay holds {written} bytes after a {data.Length}-byte write");
        Assert.Equal(data.Length, cow.OverlayBytes);

        await cow.TrimAsync(1024 * 1024, data.Length, WriteFlags.None);
        Assert.True(cow.Overlay.AllocatedBytes < written / 4, $"overlay still holds {cow.Overlay.AllocatedBytes} bytes after the trim");
        Assert.Equal(0, cow.OverlayBytes);
    }

    [Fact]
    public async Task Dispose_DisposesTheBaseOnlyWhenOwned()
    {
        var owned = new RecordingDevice(new MemoryDevice(Size));
        await new CopyOnWriteDevice(owned, ownsBase: true).DisposeAsync();
        Assert.True(owned.Disposed);

        var borrowed = new RecordingDevice(new MemoryDevice(Size));
        var cow = new CopyOnWriteDevice(borrowed);
        await cow.DisposeAsync();
        await cow.DisposeAsync();
        Assert.False(borrowed.Disposed);
    }

    internal static async Task<(RecordingDevice Recorder, byte[] Original)> CreateBaseAsync(int seed, bool yieldOnRead = false)
    {
        var memory = new MemoryDevice(Size);
        byte[] original = await DeviceContents.FillRandomAsync(memory, seed);
        return (new RecordingDevice(memory, yieldOnRead: yieldOnRead), original);
    }

    internal static async Task AssertHoldsAsync(IBlockDevice device, byte[] expected, string what)
    {
        byte[] actual = await DeviceContents.ReadAllAsync(device);
        DeviceContents.AssertEqual(expected, actual, what);
    }

    internal static async Task AssertMatchesAsync(IBlockDevice device, byte[] model, string what)
    {
        await CopyOnWriteDeviceTests.AssertHoldsAsync(device, model, what);
        // Unaligned reads across state boundaries too.
        byte[] piece = new byte[3 * Cluster + 3];
        for (int offset = 1; offset + piece.Length <= model.Length; offset += 5 * Cluster + 11)
        {
            await device.ReadAsync(offset, piece);
            DeviceContents.AssertEqual(model.AsSpan(offset, piece.Length), piece, $"{what}: read at {offset}");
        }
    }

    private static async Task<BlockExtent[]> ExtentsAsync(IBlockDevice device, long offset, long length, BlockExtent[] buffer)
    {
        int count = await device.GetExtentsAsync(offset, length, buffer);
        Assert.Equal(length, buffer[..count].Sum(e => e.Length));
        return buffer[..count];
    }

    private static IEnumerable<string> OpenFilesUnder(string directory) => OverlayFileTests.OpenFilesUnder(directory);

    private static BlockExtent Data(long length) => new(length, ExtentState.Data);
    private static BlockExtent HoleZero(long length) => new(length, ExtentState.Hole | ExtentState.Zero);
    private static BlockExtent Zero(long length) => new(length, ExtentState.Zero);

    /// <summary>A device with read and write only (no block status, no cache), all zeroes.</summary>
    private sealed class PlainDevice(long size) : IBlockDevice
    {
        public long Size => size;
        public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.None;
        public BlockSizeConstraints BlockSize => BlockSizeConstraints.Default;
        public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            destination.Span.Clear();
            return ValueTask.CompletedTask;
        }
        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("the base must never be written");
        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
