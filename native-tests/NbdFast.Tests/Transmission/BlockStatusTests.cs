using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>NBD_CMD_BLOCK_STATUS for base:allocation, with 32-bit and 64-bit descriptors.</summary>
public class BlockStatusTests
{
    private const int Chunk = 64 * 1024;
    private const uint HoleZero = 3; // NBD_STATE_HOLE | NBD_STATE_ZERO

    /// <summary>1 MiB with 64 KiB chunks 0, 1 and 4 written: data 0-128K, hole 128K-256K, data 256K-320K, hole 320K-1M.</summary>
    private static MemoryDevice Device()
    {
        var device = new MemoryDevice(16 * Chunk);
        foreach (int chunk in new[] { 0, 1, 4 })
        {
            device.Write(chunk * (long)Chunk, SimpleReplyTests.Pattern(Chunk, chunk + 1));
        }
        return device;
    }

    private static (uint ContextId, List<(ulong Length, ulong State)> Extents) Parse(RawReply reply, bool extended)
    {
        Assert.True(reply.IsDone);
        Assert.Equal(NbdError.None, reply.Error);
        Assert.Equal(extended ? NbdReplyType.BlockStatusExt : NbdReplyType.BlockStatus, reply.Header.Type);
        byte[] p = reply.Payload;
        var extents = new List<(ulong, ulong)>();
        if (extended)
        {
            uint count = BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(4));
            Assert.Equal(8 + count * 16, (uint)p.Length);
            for (int i = 8; i < p.Length; i += 16)
            {
                extents.Add((BinaryPrimitives.ReadUInt64BigEndian(p.AsSpan(i)), BinaryPrimitives.ReadUInt64BigEndian(p.AsSpan(i + 8))));
            }
        }
        else
        {
            Assert.Equal(4, p.Length % 8);
            for (int i = 4; i < p.Length; i += 8)
            {
                extents.Add((BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(i)), BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(i + 4))));
            }
        }
        Assert.NotEmpty(extents);
        Assert.All(extents, e => Assert.NotEqual(0ul, e.Item1));
        return (BinaryPrimitives.ReadUInt32BigEndian(p), extents);
    }

    [Fact]
    public async Task CompactBlockStatusReportsDataAndHoles()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), ReplyStyle.Structured, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 16 * Chunk, cookie: 0x42);
        byte[] header = await server.Client.ReadBytesAsync(20);
        // Structured chunk: DONE, NBD_REPLY_TYPE_BLOCK_STATUS (5), cookie, length 4 + 4 * 8.
        Assert.Equal("668E33EF" + "0001" + "0005" + "0000000000000042" + "00000024", Convert.ToHexString(header));
        byte[] payload = await server.Client.ReadBytesAsync(36);
        Assert.Equal(server.MetaContextId, BinaryPrimitives.ReadUInt32BigEndian(payload));
        Assert.Equal("00020000" + "00000000" + "00020000" + "00000003" + "00010000" + "00000000" + "000B0000" + "00000003",
            Convert.ToHexString(payload, 4, 32));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedBlockStatusReportsDataAndHolesWith64BitDescriptors()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), ReplyStyle.Extended, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 16 * Chunk, cookie: 0x43);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.True(reply.IsExtended);
        Assert.Equal((0x43ul, 0ul), (reply.Cookie, reply.Header.Offset));
        (uint id, var extents) = Parse(reply, extended: true);
        Assert.Equal(server.MetaContextId, id);
        Assert.Equal([(2ul * Chunk, 0ul), (2ul * Chunk, HoleZero), (1ul * Chunk, 0ul), (11ul * Chunk, HoleZero)], extents);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task RangeInTheMiddleIsClippedToTheRequest(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), style, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 100_000, 50_000, cookie: 1);
        RawReply reply = await server.Client.ReadReplyAsync();
        (_, var extents) = Parse(reply, style == ReplyStyle.Extended);
        Assert.Equal([(2ul * Chunk - 100_000, 0ul), (50_000 - (2ul * Chunk - 100_000), HoleZero)], extents);
        if (style == ReplyStyle.Extended)
        {
            Assert.Equal(100_000ul, reply.Header.Offset);
        }
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Structured, 65536ul, 15ul * Chunk, 65536ul, 0ul)]
    [InlineData(ReplyStyle.Extended, 65536ul, 15ul * Chunk, 65536ul, 0ul)]
    [InlineData(ReplyStyle.Structured, 8ul * Chunk, 4ul * Chunk, 4ul * Chunk, HoleZero)]
    [InlineData(ReplyStyle.Extended, 8ul * Chunk, 4ul * Chunk, 4ul * Chunk, HoleZero)]
    [InlineData(ReplyStyle.Extended, 0ul, 1000ul, 1000ul, 0ul)]
    public async Task ReqOneGivesExactlyOneExtentWithinTheRequest(ReplyStyle style, ulong offset, ulong length, ulong expectedLength, ulong expectedState)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), style, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, offset, length, cookie: 2, NbdCommandFlags.ReqOne);
        (_, var extents) = Parse(await server.Client.ReadReplyAsync(), style == ReplyStyle.Extended);
        Assert.Equal((expectedLength, expectedState), Assert.Single(extents));
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task WithoutAMetaContextBlockStatusIsEinval(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), style);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 4096, cookie: 3);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((3ul, NbdError.Invalid), (reply.Cookie, reply.Error));
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Structured, 0ul, 0ul)]                 // zero length
    [InlineData(ReplyStyle.Extended, 0ul, 0ul)]
    [InlineData(ReplyStyle.Structured, 16ul * Chunk, 1ul)]        // past the end
    [InlineData(ReplyStyle.Extended, 0xFFFF_FFFF_FFFF_F800ul, 4096ul)] // wraps around
    [InlineData(ReplyStyle.Extended, 0ul, 0x1_0000_0000_0000ul)]  // 64-bit effect length beyond the end
    public async Task InvalidRangesAreEinval(ReplyStyle style, ulong offset, ulong length)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), style, allocationContext: true);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, offset, length, cookie: 4);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((4ul, NbdError.Invalid), (reply.Cookie, reply.Error));
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task PayloadFormIsAdvertisedAndAnswersLikeThePlainForm()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), ReplyStyle.Extended, allocationContext: true);
        Assert.True((server.Export.Flags & NbdTransmissionFlags.BlockStatusPayload) != 0);
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(payload, 4ul * Chunk);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), server.MetaContextId!.Value);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 12, cookie: 5, NbdCommandFlags.PayloadLen, payload);
        (_, var extents) = Parse(await server.Client.ReadReplyAsync(), extended: true);
        Assert.Equal([(2ul * Chunk, 0ul), (2ul * Chunk, HoleZero)], extents);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task PayloadFormNamingAnUnknownContextIsEinval()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(Device(), ReplyStyle.Extended, allocationContext: true);
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(payload, 4096);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), server.MetaContextId!.Value + 1000);
        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 12, cookie: 6, NbdCommandFlags.PayloadLen, payload);
        Assert.Equal(NbdError.Invalid, (await server.Client.ReadReplyAsync()).Error);
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }
}
