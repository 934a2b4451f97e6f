using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 58, 59 and 61 against the binary, on a RAM disk and a file: write payloads and request
/// headers cut short, duplicate cookies in flight, and DISC behind pipelined requests.
/// </summary>
public sealed class PipelineAbuseTests(BadInputServers servers) : IClassFixture<BadInputServers>
{
    private const int Timeout = 120_000;
    private const int MiB = 1 << 20;

    /// <summary>
    /// §(b) 61: a WRITE whose payload stops short (end of stream or a reset) and a request header cut short:
    /// the connection closes cleanly and the partial write is not applied.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task WritePayloadCutShort_IsNotAppliedAndClosesCleanly(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong target = BadInputServer.ScratchOffset + 2 * MiB;
        byte[] before = new byte[64 * 1024];
        new Random(61).NextBytes(before);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(target, before, cookie: 1);
            await client.AssertSuccessReplyAsync(1);
        }

        byte[] part = new byte[40_000];
        Array.Fill(part, (byte)0xEE);
        foreach (bool reset in new[] { false, true })
        {
            (client, _) = await RawClients.NegotiateAsync(server.Process);
            await using (client)
            {
                await client.WriteAsync(client.EncodeRequest((ushort)NbdCommand.Write, target, 64 * 1024, cookie: 2));
                await client.WriteAsync(part);
                if (reset)
                {
                    client.Socket!.LingerState = new LingerOption(true, 0);   // close sends RST
                    client.Socket.Close();
                    continue;
                }
                client.ShutdownSend();
                await client.AssertClosedAsync();
            }
        }

        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            // A header cut short, then end of stream.
            await client.WriteAsync(client.EncodeRequest((ushort)NbdCommand.Read, target, 512, cookie: 3).AsMemory(0, 20));
            client.ShutdownSend();
            await client.AssertClosedAsync();
        }

        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] after = await client.ReadDataAsync(4, target, before.Length);
            Assert.True(after.AsSpan().SequenceEqual(before), "a cut-short write was applied");
        }
        await server.AssertHealthyAsync(nameof(WritePayloadCutShort_IsNotAppliedAndClosesCleanly));
    }

    /// <summary>§(b) 58: the cookie is opaque; two requests in flight with the same one are both answered.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task DuplicateCookiesInFlight_AreBothAnswered(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong a = BadInputServer.ScratchOffset + 4 * MiB, b = a + 65536;
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(a, Filled(65536, 0xA1), cookie: 1);
            await client.SendWriteAsync(b, Filled(65536, 0xB2), cookie: 1);
            await client.AssertSuccessReplyAsync(1);
            await client.AssertSuccessReplyAsync(1);
            byte[] both = [.. client.EncodeRequest((ushort)NbdCommand.Read, a, 65536, cookie: 7), .. client.EncodeRequest((ushort)NbdCommand.Read, b, 65536, cookie: 7)];
            await client.WriteAsync(both);
            byte[] first = await client.AssertReadReplyAsync(7, 0, 65536);
            byte[] second = await client.AssertReadReplyAsync(7, 0, 65536);
            // Replies may come in either order; between them they must hold both blocks, whole.
            Assert.Equal(new[] { (byte)0xA1, (byte)0xB2 }, new[] { first[0], second[0] }.Order());
            Assert.All(new[] { first, second }, block => Assert.All(block, x => Assert.Equal(block[0], x)));
        }
        await server.AssertHealthyAsync(nameof(DuplicateCookiesInFlight_AreBothAnswered));
    }

    /// <summary>
    /// §(b) 59: DISC with non-zero offset and length behind 8 READs: all 8 answered, DISC not, then a close. And
    /// a WRITE sent behind DISC (which the spec forbids) is ignored. (It is sent on a connection of its own:
    /// closing a socket with unread input makes the kernel reset it, which may cost the client replies it
    /// has not read yet, so the replies are checked on a connection that keeps to the spec.)
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task DisconnectBehindPipelinedReads_AnswersThemThenCloses(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong start = BadInputServer.ScratchOffset + 8 * MiB;
        byte[] pattern = new byte[8 * 65536];
        new Random(59).NextBytes(pattern);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(start, pattern, cookie: 1);
            await client.AssertSuccessReplyAsync(1);
            var burst = new List<byte>();
            for (int i = 0; i < 8; i++)
            {
                burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Read, start + (ulong)i * 65536, 65536, cookie: 100 + (ulong)i));
            }
            burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Disconnect, 12345, 678, cookie: 999));
            await client.WriteAsync(burst.ToArray());
            var seen = new HashSet<ulong>();
            for (int i = 0; i < 8; i++)
            {
                IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync(65536);
                ulong cookie = reply[0].Cookie;
                Assert.InRange(cookie, 100ul, 107ul);
                Assert.True(seen.Add(cookie), $"cookie {cookie} answered twice");
                int index = (int)(cookie - 100);
                Assert.True(pattern.AsSpan(index * 65536, 65536).SequenceEqual(RawNbdClient.DataOf(reply, 0, 65536)), $"READ {index} returned the wrong data");
            }
            await client.AssertClosedAsync();
        }
        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] discThenWrite = [.. client.EncodeRequest((ushort)NbdCommand.Disconnect, 0, 0, cookie: 2),
                .. client.EncodeRequest((ushort)NbdCommand.Write, start, 4096, cookie: 3, payload: new byte[4096])];
            await client.WriteAsync(discThenWrite);
            await client.AssertClosedAsync();
        }
        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] stored = await client.ReadDataAsync(4, start, 4096);
            Assert.True(stored.AsSpan().SequenceEqual(pattern.AsSpan(0, 4096)), "a request sent after DISC was applied");
        }
        await server.AssertHealthyAsync(nameof(DisconnectBehindPipelinedReads_AnswersThemThenCloses));
    }

    private static byte[] Filled(int length, byte value)
    {
        byte[] data = new byte[length];
        Array.Fill(data, value);
        return data;
    }
}
