using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Transmission without structured replies: 28-byte requests, 16-byte simple replies.</summary>
public class SimpleReplyTests
{
    internal static byte[] Pattern(int length, int seed = 1) =>
        Enumerable.Range(0, length).Select(i => (byte)(i * 7 + seed)).ToArray();

    [Fact]
    public async Task ReadIsASimpleReplyFollowedByTheData()
    {
        var device = new MemoryDevice(1024 * 1024);
        byte[] data = Pattern(4096);
        device.Write(8192, data);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);

        await server.Client.SendRequestAsync(NbdCommand.Read, 8192, 4096, cookie: 0x0102030405060708);
        byte[] header = await server.Client.ReadBytesAsync(16);
        // NBD_SIMPLE_REPLY_MAGIC, error 0, the cookie.
        Assert.Equal("67446698" + "00000000" + "0102030405060708", Convert.ToHexString(header));
        Assert.Equal(data, await server.Client.ReadBytesAsync(4096));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task WriteThenReadRoundTrips()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        byte[] data = Pattern(65536 + 123, seed: 5);

        await server.Client.SendWriteAsync(70000, data, cookie: 11);
        RawReply write = await server.Client.ReadReplyAsync();
        Assert.True(write.IsSimple);
        Assert.Equal(11ul, write.Cookie);
        Assert.Equal(NbdError.None, write.Error);

        await server.Client.SendRequestAsync(NbdCommand.Read, 70000, (ulong)data.Length, cookie: 12);
        RawReply read = await server.Client.ReadReplyAsync(data.Length);
        Assert.Equal(12ul, read.Cookie);
        Assert.Equal(data, read.Payload);

        var stored = new byte[data.Length];
        device.Read(70000, stored);
        Assert.Equal(data, stored);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task FlushAndFuaWriteSucceed()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(65536));
        Assert.True((server.Export.Flags & NbdTransmissionFlags.SendFua) != 0);
        await server.Client.SendWriteAsync(0, Pattern(512), cookie: 1, NbdCommandFlags.Fua);
        Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
        await server.Client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 2);
        RawReply flush = await server.Client.ReadReplyAsync();
        Assert.Equal((2ul, NbdError.None), (flush.Cookie, flush.Error));
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task ZeroLengthRequestsSucceed(ReplyStyle style)
    {
        var device = new MemoryDevice(65536);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);
        await server.Client.SendRequestAsync(NbdCommand.Read, 4096, 0, cookie: 1);
        await server.Client.SendWriteAsync(4096, [], cookie: 2);
        await server.Client.SendRequestAsync(NbdCommand.Trim, 4096, 0, cookie: 3);
        await server.Client.SendRequestAsync(NbdCommand.WriteZeroes, 4096, 0, cookie: 4);
        await server.Client.SendRequestAsync(NbdCommand.Cache, 4096, 0, cookie: 5);
        await server.Client.SendRequestAsync(NbdCommand.Read, 65536, 0, cookie: 6); // at the very end

        var cookies = new List<ulong>();
        for (int i = 0; i < 6; i++)
        {
            RawReply reply = await server.Client.ReadReplyAsync();
            Assert.Equal(NbdError.None, reply.Error);
            Assert.True(reply.IsDone);
            Assert.Empty(reply.Payload);
            Assert.Equal(style == ReplyStyle.Extended, reply.IsExtended);
            cookies.Add(reply.Cookie);
        }
        Assert.Equal(new ulong[] { 1, 2, 3, 4, 5, 6 }, cookies.Order());
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }
}
