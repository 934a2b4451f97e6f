using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>NBD_CMD_DISC: every request in flight is answered, DISC itself is not, then the connection closes.</summary>
public class DisconnectTests
{
    [Fact]
    public async Task DiscWithEightReadsInFlightAnswersAllEightThenCloses()
    {
        var device = new GatedDevice(1024 * 1024);
        for (int i = 0; i < 8; i++)
        {
            device.Inner.Write(i * 4096L, SimpleReplyTests.Pattern(4096, i));
        }
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);

        var batch = new List<byte>();
        for (int i = 0; i < 8; i++)
        {
            batch.AddRange(server.Client.EncodeRequest((ushort)NbdCommand.Read, (ulong)i * 4096, 4096, cookie: 100 + (ulong)i));
        }
        // DISC with non-zero offset and length is still DISC; the bytes after it must be ignored.
        batch.AddRange(server.Client.EncodeRequest((ushort)NbdCommand.Disconnect, 12345, 678, cookie: 999));
        batch.AddRange(new byte[64]);
        await server.Client.WriteAsync(batch.ToArray());

        await device.WaitForReadsAsync(8, TransmissionServer.Timeout);
        await Task.Delay(200);
        Assert.False(server.Serving.IsCompleted, "the session ended with reads still in flight");
        device.Open();

        var seen = new HashSet<ulong>();
        for (int i = 0; i < 8; i++)
        {
            RawReply reply = await server.Client.ReadReplyAsync(4096);
            Assert.Equal(NbdError.None, reply.Error);
            int index = (int)(reply.Cookie - 100);
            Assert.InRange(index, 0, 7);
            Assert.True(seen.Add(reply.Cookie));
            Assert.Equal(SimpleReplyTests.Pattern(4096, index), reply.Payload);
        }
        await server.Client.AssertClosedAsync();
        await server.StoppedAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task DiscIsNotAnswered(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new NbdFast.Devices.MemoryDevice(65536), style);
        await server.DisconnectAsync();
    }
}
