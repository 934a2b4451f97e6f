using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--max-in-flight: a client with more requests in flight is slowed (not refused), and the trip is logged.</summary>
public sealed class InFlightLimitTests
{
    private const int Reads = 128;
    private const int ReadLength = 64 * 1024;

    /// <summary>
    /// The raw client queues all its reads and waits a second before it reads a single reply: the replies fill the
    /// socket (8 MiB against a few hundred KiB of buffer), so the requests behind them must wait at the limit on either
    /// engine. (libnbd reads replies while it queues, so with it tripping the limit was a matter of timing.)
    /// </summary>
    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task MoreRequestsThanTheLimit_AreAllAnswered_AndTheLimitIsLogged(Engine engine)
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--memory", "8M", "--max-in-flight", "4");
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server);
        await using (client)
        {
            await RawClients.QueueReadsThenPauseAsync(client, Reads, ReadLength);

            var answered = new HashSet<ulong>();
            for (int i = 0; i < Reads; i++)
            {
                RawReply reply = await client.ReadReplyAsync(ReadLength);
                Assert.True(reply.IsSimple && reply.Error == NbdError.None, $"reply to {reply.Cookie}: {reply.ErrorMessage}\n--- server ---\n{server.Stderr}");
                answered.Add(reply.Cookie);
            }
            Assert.Equal(Reads, answered.Count);
            await client.SendDisconnectAsync();
        }
        await server.WaitForStderrAsync("(--max-in-flight, --max-in-flight-bytes)");
    }
}
