using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Devices;

/// <summary>
/// <see cref="SliceDevice"/> on its own: argument checks, every operation shifted by the offset and refused
/// outside the slice (without reaching the inner device), capabilities passed through, extents clipped.
/// </summary>
public sealed class SliceDeviceTests
{
    private const int InnerSize = 1024 * 1024;
    private const long Start = 192 * 1024;
    private const long Length = 512 * 1024;

    [Theory]
    [InlineData(-1L, null, "offset")]
    [InlineData(InnerSize + 1L, null, "offset")]
    [InlineData(0L, InnerSize + 1L, "length")]
    [InlineData(4096L, InnerSize - 4095L, "length")]
    [InlineData(4096L, -1L, "length")]
    [InlineData(long.MaxValue, null, "offset")]
    public void Constructor_RangeOutsideTheDevice_Throws(long offset, long? length, string parameter)
    {
        var inner = new MemoryDevice(InnerSize);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SliceDevice(inner, offset, length));
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains("bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_OffsetNotAMultipleOfTheMinimumBlockSize_Throws()
    {
        var inner = new RecordingDevice(new MemoryDevice(InnerSize), new BlockSizeConstraints(512, 4096, 1 << 20));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SliceDevice(inner, 1000, 4096));
        Assert.Equal("offset", e.ParamName);
        Assert.Contains("512", e.Message, StringComparison.Ordinal);
        var length = Assert.Throws<ArgumentOutOfRangeException>(() => new SliceDevice(inner, 1024, 1000));
        Assert.Equal("length", length.ParamName);
        // Aligned, and a slice running to the inner device's end, are fine.
        Assert.Equal(4096, new SliceDevice(inner, 1024, 4096).Size);
        Assert.Equal(InnerSize - 1024, new SliceDevice(inner, 1024).Size);
    }

    [Fact]
    public void Constructor_EdgeSlices_HaveTheRightSize()
    {
        var inner = new MemoryDevice(InnerSize);
        Assert.Equal(InnerSize, new SliceDevice(inner, 0).Size);
        Assert.Equal(0, new SliceDevice(inner, InnerSize).Size);
        Assert.Equal(0, new SliceDevice(inner, 4096, 0).Size);
        Assert.Equal(Length, new SliceDevice(inner, Start, Length).Size);
        Assert.Equal(Start, new SliceDevice(inner, Start, Length).Offset);
    }

    [Fact]
    public async Task CapabilitiesAndBlockSize_PassThrough()
    {
        using var temp = new Support.TempDirectory();
        await using var readOnlyFile = FileDevice.Open(temp.CreateRandomFile("base.img", InnerSize, seed: 3), readOnly: true);
        var slice = new SliceDevice(readOnlyFile, 4096, 8192, ownsInner: false);
        Assert.Equal(readOnlyFile.Capabilities, slice.Capabilities);
        Assert.True((slice.Capabilities & BlockDeviceCapabilities.ReadOnly) != 0);
        Assert.Equal(readOnlyFile.BlockSize, slice.BlockSize);
        Assert.Same(readOnlyFile, slice.Inner);

        var constrained = new RecordingDevice(new MemoryDevice(InnerSize), new BlockSizeConstraints(512, 8192, 65536));
        Assert.Equal(new BlockSizeConstraints(512, 8192, 65536), new SliceDevice(constrained, 4096, 8192).BlockSize);
        Assert.Equal(new MemoryDevice(1).Capabilities, new SliceDevice(constrained, 4096, 8192).Capabilities);
    }

    [Fact]
    public async Task EveryOperation_IsShiftedByTheOffset()
    {
        var memory = new MemoryDevice(InnerSize);
        byte[] original = await Support.DeviceContents.FillRandomAsync(memory, seed: 1);
        var inner = new RecordingDevice(memory);
        await using var slice = new SliceDevice(inner, Start, Length);

        byte[] data = [.. Enumerable.Range(0, 1000).Select(i => (byte)(i * 7 + 1))];
        await slice.WriteAsync(100, data, WriteFlags.Fua);
        byte[] read = new byte[3000];
        await slice.ReadAsync(0, read);
        await slice.TrimAsync(Length - 65536, 65536, WriteFlags.None);
        await slice.WriteZeroesAsync(2000, 500, WriteFlags.NoHole);
        await slice.CacheAsync(10, 20);
        await slice.FlushAsync();
        BlockExtent[] extents = new BlockExtent[8];
        int count = await slice.GetExtentsAsync(Length - 131072, 131072, extents);

        Assert.Equal(
            [
                new DeviceCall("write", Start + 100, 1000),
                new DeviceCall("read", Start, 3000),
                new DeviceCall("trim", Start + Length - 65536, 65536),
                new DeviceCall("zero", Start + 2000, 500),
                new DeviceCall("cache", Start + 10, 20),
                new DeviceCall("flush", 0, 0),
                new DeviceCall("extents", Start + Length - 131072, 131072),
            ],
            inner.Calls);

        // The read saw the slice's own bytes (its first 100 original, then the write).
        Support.DeviceContents.AssertEqual(original.AsSpan((int)Start, 100), read.AsSpan(0, 100), "before the write");
        Support.DeviceContents.AssertEqual(data, read.AsSpan(100, 1000), "the write");
        // Trimmed chunk released: data then hole|zero, together exactly the request.
        Assert.Equal([new BlockExtent(65536, ExtentState.Data), new BlockExtent(65536, ExtentState.Hole | ExtentState.Zero)], extents[..count]);

        // Outside the slice nothing changed.
        byte[] after = await Support.DeviceContents.ReadAllAsync(memory);
        Support.DeviceContents.AssertEqual(original.AsSpan(0, (int)Start), after.AsSpan(0, (int)Start), "before the slice");
        Support.DeviceContents.AssertEqual(original.AsSpan((int)(Start + Length)), after.AsSpan((int)(Start + Length)), "after the slice");
    }

    public static TheoryData<string, long, long> OutOfRange => new()
    {
        { "read", Length - 10, 11 },
        { "read", Length + 1, 0 },
        { "read", -1, 1 },
        { "write", Length, 1 },
        { "write", Length - 4096, 4097 },
        { "trim", 0, Length + 1 },
        { "trim", long.MaxValue, 1 },
        { "zero", Length - 1, 2 },
        { "zero", 1, long.MaxValue },
        { "cache", Length, 1 },
        { "extents", Length - 1, 2 },
        { "extents", -4096, 8192 },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public async Task OutsideTheSlice_IsRefusedWithEinval_AndNeverReachesTheInnerDevice(string operation, long offset, long length)
    {
        var inner = new RecordingDevice(new MemoryDevice(InnerSize));
        await using var slice = new SliceDevice(inner, Start, Length);
        byte[] buffer = new byte[Math.Clamp(length, 0, 8192)];
        var e = await Assert.ThrowsAsync<BlockDeviceException>(async () =>
        {
            switch (operation)
            {
                case "read": await slice.ReadAsync(offset, buffer); break;
                case "write": await slice.WriteAsync(offset, buffer, WriteFlags.None); break;
                case "trim": await slice.TrimAsync(offset, length, WriteFlags.None); break;
                case "zero": await slice.WriteZeroesAsync(offset, length, WriteFlags.None); break;
                case "cache": await slice.CacheAsync(offset, length); break;
                default: await slice.GetExtentsAsync(offset, length, new BlockExtent[4]); break;
            }
        });
        Assert.Equal(NbdError.Invalid, e.Error);
        Assert.Empty(inner.Calls);
    }

    [Fact]
    public async Task WholeSliceWriteZeroAndTrim_LeaveTheRestOfTheDeviceAlone()
    {
        var memory = new MemoryDevice(InnerSize);
        byte[] original = await Support.DeviceContents.FillRandomAsync(memory, seed: 2);
        await using var slice = new SliceDevice(memory, Start, Length, ownsInner: false);

        byte[] pattern = new byte[Length];
        Array.Fill(pattern, (byte)0x5a);
        await slice.WriteAsync(0, pattern, WriteFlags.None);
        await slice.WriteZeroesAsync(0, Length, WriteFlags.None);
        await slice.TrimAsync(0, Length, WriteFlags.None);

        byte[] after = await Support.DeviceContents.ReadAllAsync(memory);
        Support.DeviceContents.AssertEqual(original.AsSpan(0, (int)Start), after.AsSpan(0, (int)Start), "before the slice");
        Support.DeviceContents.AssertEqual(new byte[Length], after.AsSpan((int)Start, (int)Length), "the slice");
        Support.DeviceContents.AssertEqual(original.AsSpan((int)(Start + Length)), after.AsSpan((int)(Start + Length)), "after the slice");
    }

    [Fact]
    public async Task Extents_ThatAnInnerDeviceReportsPastTheRequest_AreClippedToTheSlice()
    {
        await using var slice = new SliceDevice(new OverreachingDevice(InnerSize), Start, Length);
        BlockExtent[] extents = new BlockExtent[4];
        int count = await slice.GetExtentsAsync(Length - 4096, 4096, extents);
        Assert.Equal([new BlockExtent(4096, ExtentState.Zero)], extents[..count]);
        count = await slice.GetExtentsAsync(0, Length, extents);
        Assert.Equal([new BlockExtent(Length, ExtentState.Zero)], extents[..count]);
    }

    [Fact]
    public void ClipToLength_DropsEmptyAndCutsAtTheEnd()
    {
        BlockExtent[] extents = [new(0, ExtentState.Data), new(100, ExtentState.Hole), new(-5, ExtentState.Data), new(300, ExtentState.Data), new(50, ExtentState.Zero)];
        int count = SliceDevice.ClipToLength(extents, 250);
        Assert.Equal([new BlockExtent(100, ExtentState.Hole), new BlockExtent(150, ExtentState.Data)], extents[..count]);
    }

    [Fact]
    public async Task Dispose_DisposesTheInnerDeviceOnlyWhenOwned()
    {
        var owned = new RecordingDevice(new MemoryDevice(4096));
        await new SliceDevice(owned, 0).DisposeAsync();
        Assert.True(owned.Disposed);

        var borrowed = new RecordingDevice(new MemoryDevice(4096));
        await new SliceDevice(borrowed, 0, ownsInner: false).DisposeAsync();
        Assert.False(borrowed.Disposed);
    }

    [Fact]
    public async Task ZeroLengthRequestsAtTheEnd_AreAccepted()
    {
        var inner = new RecordingDevice(new MemoryDevice(InnerSize));
        await using var slice = new SliceDevice(inner, Start, Length);
        await slice.ReadAsync(Length, Memory<byte>.Empty);
        await slice.WriteAsync(Length, ReadOnlyMemory<byte>.Empty, WriteFlags.None);
        Assert.Equal([new DeviceCall("read", Start + Length, 0), new DeviceCall("write", Start + Length, 0)], inner.Calls);
    }

    /// <summary>Answers every extent query with one extent as long as the whole device, wherever the query starts.</summary>
    private sealed class OverreachingDevice(long size) : IBlockDevice
    {
        public long Size => size;
        public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.BlockStatus;
        public BlockSizeConstraints BlockSize => BlockSizeConstraints.Default;
        public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
        {
            extents.Span[0] = new BlockExtent(size, ExtentState.Zero);
            extents.Span[1] = new BlockExtent(size, ExtentState.Data);
            return ValueTask.FromResult(2);
        }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
