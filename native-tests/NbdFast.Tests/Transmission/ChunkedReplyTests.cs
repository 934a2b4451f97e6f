using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Structured replies (20-byte chunks) and extended headers (32-byte requests and chunks).</summary>
public class ChunkedReplyTests
{
    [Fact]
    public async Task StructuredReadIsOneOffsetDataChunkWithDone()
    {
        var device = new MemoryDevice(1024 * 1024);
        byte[] data = SimpleReplyTests.Pattern(3000);
        device.Write(5000, data);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured);

        await server.Client.SendRequestAsync(NbdCommand.Read, 5000, 3000, cookie: 0xAB);
        byte[] header = await server.Client.ReadBytesAsync(20);
        // NBD_STRUCTURED_REPLY_MAGIC, flags DONE, type OFFSET_DATA, cookie, length 8 + 3000.
        Assert.Equal("668E33EF" + "0001" + "0001" + "00000000000000AB" + "00000BC0", Convert.ToHexString(header));
        byte[] payload = await server.Client.ReadBytesAsync(3008);
        Assert.Equal(5000ul, BinaryPrimitives.ReadUInt64BigEndian(payload));
        Assert.Equal(data, payload[8..]);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task StructuredReadWithDontFragmentIsOneChunk()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured);
        Assert.True((server.Export.Flags & NbdTransmissionFlags.SendDf) != 0);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 65536, cookie: 1, NbdCommandFlags.DontFragment);
        IReadOnlyList<RawReply> chunks = await server.Client.ReadFullReplyAsync();
        RawReply chunk = Assert.Single(chunks);
        Assert.True(chunk.IsStructured);
        Assert.Equal(NbdReplyType.OffsetData, chunk.Header.Type);
        Assert.Equal(65536 + 8, chunk.Payload.Length);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task StructuredReadErrorIsAnErrorChunkNotASimpleReply()
    {
        // The spec: with structured replies the server MUST NOT use a simple reply for NBD_CMD_READ.
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(65536), ReplyStyle.Structured);
        await server.Client.SendRequestAsync(NbdCommand.Read, 65536, 1, cookie: 3);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.True(reply.IsStructured);
        Assert.Equal(NbdReplyType.Error, reply.Header.Type);
        Assert.Equal(NbdReplyFlags.Done, reply.Header.Flags);
        Assert.Equal(NbdError.Invalid, reply.Error);
        Assert.Equal(6 + reply.ErrorMessage.Length, reply.Payload.Length);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedReadIsOneExtendedOffsetDataChunkEchoingTheOffset()
    {
        var device = new MemoryDevice(1024 * 1024);
        byte[] data = SimpleReplyTests.Pattern(512, seed: 9);
        device.Write(0x1_0000, data);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Extended);

        byte[] request = server.Client.EncodeRequest((ushort)NbdCommand.Read, 0x1_0000, 512, cookie: 0x77);
        // NBD_EXTENDED_REQUEST_MAGIC, flags 0, READ, cookie, offset, 64-bit length.
        Assert.Equal("21E41C71" + "0000" + "0000" + "0000000000000077" + "0000000000010000" + "0000000000000200", Convert.ToHexString(request));
        await server.Client.WriteAsync(request);

        byte[] header = await server.Client.ReadBytesAsync(32);
        // NBD_EXTENDED_REPLY_MAGIC, DONE, OFFSET_DATA, cookie, the request's offset, 64-bit length 8 + 512.
        Assert.Equal("6E8A278C" + "0001" + "0001" + "0000000000000077" + "0000000000010000" + "0000000000000208", Convert.ToHexString(header));
        byte[] payload = await server.Client.ReadBytesAsync(520);
        Assert.Equal(0x1_0000ul, BinaryPrimitives.ReadUInt64BigEndian(payload));
        Assert.Equal(data, payload[8..]);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedWriteAndFlushSucceedWithANoneChunk()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Extended);
        byte[] data = SimpleReplyTests.Pattern(4096, seed: 3);

        await server.Client.SendRequestAsync(NbdCommand.Write, 12288, 4096, cookie: 0x55, NbdCommandFlags.PayloadLen, data);
        byte[] header = await server.Client.ReadBytesAsync(32);
        // NBD_EXTENDED_REPLY_MAGIC, DONE, NONE, cookie, offset 12288, length 0.
        Assert.Equal("6E8A278C" + "0001" + "0000" + "0000000000000055" + "0000000000003000" + "0000000000000000", Convert.ToHexString(header));
        var stored = new byte[4096];
        device.Read(12288, stored);
        Assert.Equal(data, stored);

        await server.Client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 0x56);
        RawReply flush = await server.Client.ReadReplyAsync();
        Assert.True(flush.IsExtended);
        Assert.Equal((NbdReplyFlags.Done, NbdReplyType.None, 0x56ul, 0ul, 0ul), (flush.Header.Flags, flush.Header.Type, flush.Cookie, flush.Header.Offset, flush.Header.Length));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedWriteWithoutPayloadLenIsInvalidAndCarriesNoPayload()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Extended);
        // Without PAYLOAD_LEN the length is an effect length: no payload follows.
        await server.Client.SendRequestAsync(NbdCommand.Write, 4096, 4096, cookie: 1);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.True(reply.IsExtended);
        Assert.Equal((NbdError.Invalid, 1ul, 4096ul), (reply.Error, reply.Cookie, reply.Header.Offset));
        Assert.Equal(0, device.CommittedBytes);

        await server.Client.SendRequestAsync(NbdCommand.Read, 4096, 16, cookie: 2);
        RawReply read = await server.Client.ReadReplyAsync();
        Assert.Equal((NbdError.None, 2ul), (read.Error, read.Cookie));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedPayloadOnACommandWithoutOneIsDrainedAndInvalid()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(1024 * 1024), ReplyStyle.Extended);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 100, cookie: 1, NbdCommandFlags.PayloadLen, new byte[100]);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((NbdError.Invalid, 1ul), (reply.Error, reply.Cookie));
        Assert.Equal(NbdReplyType.Error, reply.Header.Type);

        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 16, cookie: 2);
        RawReply next = await server.Client.ReadReplyAsync();
        Assert.Equal((NbdError.None, 2ul), (next.Error, next.Cookie));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedErrorChunksEchoTheOffset()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(65536), ReplyStyle.Extended);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0xFFFF_FFFF_FFFF_0000, 4096, cookie: 9);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.True(reply.IsExtended);
        Assert.Equal(NbdReplyType.Error, reply.Header.Type);
        Assert.Equal(0xFFFF_FFFF_FFFF_0000, reply.Header.Offset);
        Assert.Equal(NbdError.Invalid, reply.Error);
        Assert.Equal((ulong)reply.Payload.Length, reply.Header.Length);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ExtendedReadWithA64BitEffectLengthIsRefused()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(65536), ReplyStyle.Extended);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 0x1_0000_0000, cookie: 4);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal(4ul, reply.Cookie);
        Assert.NotEqual(NbdError.None, reply.Error);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 16, cookie: 5);
        Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
        await server.DisconnectAsync();
    }
}
