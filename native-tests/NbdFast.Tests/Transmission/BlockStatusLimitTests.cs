using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>BLOCK_STATUS bounds: descriptors never reach past the request, and their number is capped.</summary>
public class BlockStatusLimitTests
{
    /// <summary>An 8 TiB device that describes everything from the offset to its end as one extent.</summary>
    private sealed class HugeDevice : IBlockDevice
    {
        public long Size => 8L << 40;
        public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.BlockStatus;
        public BlockSizeConstraints BlockSize => BlockSizeConstraints.Default;

        public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            destination.Span.Clear();
            return ValueTask.CompletedTask;
        }

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
        {
            extents.Span[0] = new BlockExtent(Size - offset, ExtentState.Data);
            return ValueTask.FromResult(1);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData(NbdCommandFlags.None)]
    [InlineData(NbdCommandFlags.ReqOne)]
    public async Task CompactDescriptorOfAHugeExtentIsClippedToTheRequest(NbdCommandFlags flags)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new HugeDevice(), ReplyStyle.Structured, readOnly: true, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 4096, 0xFFFF_FFFF, cookie: 1, flags);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal(NbdReplyType.BlockStatus, reply.Header.Type);
        Assert.Equal(12, reply.Payload.Length); // context id and exactly one descriptor
        Assert.Equal("FFFFFFFF" + "00000000", Convert.ToHexString(reply.Payload, 4, 8));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedDescriptorCarriesA64BitLengthClippedToTheRequest()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new HugeDevice(), ReplyStyle.Extended, readOnly: true, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 1L << 40, 1ul << 41, cookie: 2);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal(NbdReplyType.BlockStatusExt, reply.Header.Type);
        Assert.Equal(1L << 40, (long)reply.Header.Offset);
        Assert.Equal("00000001" + "0000020000000000" + "0000000000000000", Convert.ToHexString(reply.Payload, 4, 20));
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task DescriptorCountIsCappedAndCoversLessThanTheRequest(ReplyStyle style)
    {
        const int Chunk = 64 * 1024;
        var device = new MemoryDevice(32 * Chunk);
        for (int i = 0; i < 32; i += 2)
        {
            device.Write((long)i * Chunk, [1]);
        }
        var options = new ServeOptions { MaxExtentsPerReply = 8 };
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style, allocationContext: true, options: options);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 32 * Chunk, cookie: 3);
        RawReply reply = await server.Client.ReadReplyAsync();
        int descriptor = style == ReplyStyle.Extended ? 16 : 8;
        int prefix = style == ReplyStyle.Extended ? 8 : 4;
        int count = (reply.Payload.Length - prefix) / descriptor;
        Assert.Equal(8, count);
        for (int i = 0; i < count; i++)
        {
            ulong length = style == ReplyStyle.Extended
                ? BinaryPrimitives.ReadUInt64BigEndian(reply.Payload.AsSpan(prefix + i * descriptor))
                : BinaryPrimitives.ReadUInt32BigEndian(reply.Payload.AsSpan(prefix + i * descriptor));
            Assert.Equal((ulong)Chunk, length);
        }
        await server.DisconnectAsync();
    }
}
