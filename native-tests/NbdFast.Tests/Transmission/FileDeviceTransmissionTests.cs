using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>The transmission phase over a small sparse file.</summary>
public sealed class FileDeviceTransmissionTests : IDisposable
{
    private const int Size = 1024 * 1024;
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"nbdfast-transmission-{Guid.NewGuid():N}.img");

    public FileDeviceTransmissionTests()
    {
        using FileStream file = File.Create(_path);
        file.SetLength(Size);
    }

    public void Dispose() => File.Delete(_path);

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Extended)]
    public async Task WriteFlushReadAndZeroReachTheFile(ReplyStyle style)
    {
        await using FileDevice device = FileDevice.Open(_path);
        await using (TransmissionServer server = await TransmissionServer.StartAsync(device, style))
        {
            byte[] data = SimpleReplyTests.Pattern(8192, 3);
            await server.Client.SendWriteAsync(65536, data, cookie: 1, NbdCommandFlags.Fua);
            Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
            await server.Client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 2);
            Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);

            await server.Client.SendRequestAsync(NbdCommand.Read, 65536, 8192, cookie: 3);
            IReadOnlyList<RawReply> read = await server.Client.ReadFullReplyAsync(8192);
            byte[] payload = style == ReplyStyle.Simple ? read[0].Payload : read[0].Payload[8..];
            Assert.Equal(data, payload);

            await server.Client.SendRequestAsync(NbdCommand.WriteZeroes, 65536, 4096, cookie: 4, NbdCommandFlags.NoHole);
            Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
            await server.Client.SendRequestAsync(NbdCommand.Trim, 65536 + 4096, 4096, cookie: 5);
            Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
            await server.DisconnectAsync();
        }

        byte[] file = await File.ReadAllBytesAsync(_path);
        byte[] written = SimpleReplyTests.Pattern(8192, 3);
        Assert.All(file.AsSpan(0, 65536 + 4096).ToArray(), b => Assert.Equal(0, b));
        // TRIM is advisory: the trimmed range holds either the old data or zeroes.
        byte[] trimmed = file.AsSpan(65536 + 4096, 4096).ToArray();
        Assert.True(trimmed.SequenceEqual(written[4096..]) || trimmed.All(b => b == 0));
        Assert.All(file.AsSpan(65536 + 8192).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task BlockStatusReportsWrittenRangeAsData()
    {
        await using FileDevice device = FileDevice.Open(_path);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Extended, allocationContext: true);
        await server.Client.SendWriteAsync(256 * 1024, SimpleReplyTests.Pattern(65536), cookie: 1);
        Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);

        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 256 * 1024, 65536, cookie: 2, NbdCommandFlags.ReqOne);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal(NbdReplyType.BlockStatusExt, reply.Header.Type);
        // context id, count 1, one descriptor: 64 KiB of data (status 0).
        Assert.Equal("00000001" + "0000000000010000" + "0000000000000000", Convert.ToHexString(reply.Payload, 4, 20));
        await server.DisconnectAsync();
    }
}
