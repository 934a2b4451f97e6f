using System.Diagnostics;
using System.Net.Sockets;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Negotiation;

/// <summary>The handshake deadline, and WithConnectionAsync closing the connection on every path.</summary>
public class DeadlineAndLifetimeTests
{
    private static readonly NegotiationOptions ShortDeadline = new() { HandshakeTimeout = TimeSpan.FromMilliseconds(500) };

    [Fact]
    public async Task ClientThatStallsAfterTheFlagsIsDisconnectedAtTheDeadline()
    {
        var clock = Stopwatch.StartNew();
        await using HandshakeServer server = await HandshakeServer.StartedAsync(options: ShortDeadline);
        await server.FailsWithAsync<NbdProtocolException>();
        await server.Client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"disconnected after {clock.Elapsed}");
    }

    [Fact]
    public async Task ClientThatNeverAnswersTheGreetingIsDisconnectedAtTheDeadline()
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync(options: ShortDeadline);
        await server.Client.ReadGreetingAsync();
        await server.FailsWithAsync<NbdProtocolException>();
        await server.Client.AssertClosedAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task ClientThatTricklesAnOptionIsDisconnectedAtTheDeadline()
    {
        // Each byte arrives in time for a per-read timeout, but the whole handshake does not.
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: ["a"], options: ShortDeadline);
        var header = new byte[16];
        HandshakeCodec.WriteOptionHeader(header, (uint)NbdOption.List, 0);
        Task<NbdProtocolException> failed = server.FailsWithAsync<NbdProtocolException>();
        try
        {
            foreach (byte b in header)
            {
                await server.Client.WriteAsync(new[] { b });
                await Task.Delay(100);
            }
        }
        catch (IOException)
        {
            // The server hung up mid-trickle: that is the expected outcome.
        }
        await failed;
    }

    [Fact]
    public async Task WithConnectionAsyncClosesTheConnectionAndRethrowsWhenTheHandlerThrows()
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync();
        await using (client)
        {
            var channel = new NbdChannel(new NetworkStream(socket, ownsSocket: true));
            string? seen = null;
            Task serving = Task.Run(() => NbdServer.WithConnectionAsync(channel, null, (name, _) =>
            {
                seen = name;
                throw new InvalidOperationException("handler failed");
            }));

            await client.StartAsync();
            await client.SendOptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("x"));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => serving.WaitAsync(HandshakeServer.Timeout));
            Assert.Equal("handler failed", error.Message);
            Assert.Equal("x", seen);
            // The GO reply was never sent (the handler did not serve): the client just sees the close.
            await client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task WithConnectionAsyncClosesTheConnectionWhenTheHandlerReturns()
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync();
        await using (client)
        {
            var channel = new NbdChannel(new NetworkStream(socket, ownsSocket: true));
            Task serving = Task.Run(() => NbdServer.WithConnectionAsync(channel, null,
                (_, connection) => connection.ServeAsync(new NbdFast.Devices.MemoryDevice(4096), readOnly: true)));

            await client.StartAsync();
            await client.GoAsync("x");
            await client.SendDisconnectAsync();
            await serving.WaitAsync(HandshakeServer.Timeout);
            await client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task WithConnectionAsyncPropagatesAnAbortWithoutCallingTheHandler()
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync();
        await using (client)
        {
            var channel = new NbdChannel(new NetworkStream(socket, ownsSocket: true));
            bool called = false;
            Task serving = Task.Run(() => NbdServer.WithConnectionAsync(channel, null, (_, _) =>
            {
                called = true;
                return Task.CompletedTask;
            }));

            await client.StartAsync();
            OptionReplies.AssertAck(await client.OptionAsync(NbdOption.Abort), NbdOption.Abort);
            await Assert.ThrowsAsync<ClientRequestedAbortException>(() => serving.WaitAsync(HandshakeServer.Timeout));
            Assert.False(called);
            await client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        }
    }
}
