using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Many requests sent before any reply is read.</summary>
public class PipeliningTests
{
    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task SixtyFourPipelinedRequestsAreAllAnsweredWithTheirCookies(ReplyStyle style)
    {
        const int Count = 64;
        const int Length = 4096;
        var device = new MemoryDevice(2 * Count * Length);
        // The upper half holds known data for the reads; the writes go to the lower half.
        for (int i = 0; i < Count; i++)
        {
            device.Write((long)(Count + i) * Length, SimpleReplyTests.Pattern(Length, 100 + i));
        }
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);

        var batch = new List<byte>();
        var requests = new Dictionary<ulong, (NbdCommand Command, ulong Offset, int Index)>();
        for (int i = 0; i < Count; i++)
        {
            ulong cookie = 0xC0FFEE_0000ul + (ulong)i;
            bool write = i % 2 == 0;
            ulong offset = (ulong)((write ? i : Count + i) * Length);
            NbdCommandFlags flags = write && style == ReplyStyle.Extended ? NbdCommandFlags.PayloadLen : NbdCommandFlags.None;
            byte[] payload = write ? SimpleReplyTests.Pattern(Length, i) : [];
            batch.AddRange(server.Client.EncodeRequest((ushort)(write ? NbdCommand.Write : NbdCommand.Read), offset, Length, cookie, flags, payload));
            requests[cookie] = (write ? NbdCommand.Write : NbdCommand.Read, offset, i);
        }
        await server.Client.WriteAsync(batch.ToArray());

        var answered = new HashSet<ulong>();
        for (int n = 0; n < Count; n++)
        {
            IReadOnlyList<RawReply> reply = await server.Client.ReadFullReplyAsync(
                cookie => requests.TryGetValue(cookie, out var r) && r.Command == NbdCommand.Read ? Length : 0);
            ulong cookie = reply[0].Cookie;
            Assert.True(requests.TryGetValue(cookie, out var request), $"reply for unknown cookie {cookie:x}");
            Assert.True(answered.Add(cookie), $"cookie {cookie:x} answered twice");
            Assert.All(reply, chunk => Assert.Equal(NbdError.None, chunk.Error));
            Assert.All(reply, chunk => Assert.Equal(cookie, chunk.Cookie));
            if (style == ReplyStyle.Extended)
            {
                Assert.All(reply, chunk => Assert.Equal(request.Offset, chunk.Header.Offset));
            }
            if (request.Command == NbdCommand.Read)
            {
                byte[] data = style == ReplyStyle.Simple ? reply[0].Payload : Assert.Single(reply).Payload[8..];
                Assert.Equal(SimpleReplyTests.Pattern(Length, 100 + request.Index), data);
            }
        }
        Assert.Equal(Count, answered.Count);

        for (int i = 0; i < Count; i += 2)
        {
            var stored = new byte[Length];
            device.Read((long)i * Length, stored);
            Assert.Equal(SimpleReplyTests.Pattern(Length, i), stored);
        }
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task RequestsSharingACookieAreEachAnswered()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(65536));
        byte[] one = server.Client.EncodeRequest((ushort)NbdCommand.Read, 0, 512, cookie: 5);
        byte[] two = server.Client.EncodeRequest((ushort)NbdCommand.Read, 512, 512, cookie: 5);
        await server.Client.WriteAsync(one.Concat(two).ToArray());
        for (int i = 0; i < 2; i++)
        {
            RawReply reply = await server.Client.ReadReplyAsync(512);
            Assert.Equal((5ul, NbdError.None), (reply.Cookie, reply.Error));
        }
        await server.DisconnectAsync();
    }
}
