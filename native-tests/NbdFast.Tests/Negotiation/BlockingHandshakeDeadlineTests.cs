using System.Net;
using System.Net.Sockets;
using NbdFast.IO.Sockets;

namespace NbdFast.Tests.Negotiation;

/// <summary>
/// The handshake of io_uring connections runs on <see cref="BlockingSocketStream"/>, whose cancellation shuts
/// the socket down. A missed deadline must still surface as a cancellation (NbdProtocolException wrapping
/// OperationCanceledException), not as the client closing the connection, or the CLI logs it as the wrong thing.
/// </summary>
public class BlockingHandshakeDeadlineTests
{
    private static async Task<(Socket Server, Socket Client)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await listener.AcceptAsync();
        return (server, client);
    }

    [Fact]
    public async Task ReadCancelledWhileThePeerIsSilent_ThrowsOperationCanceled()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        await using (var stream = new BlockingSocketStream(server))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Run(() => stream.ReadAsync(new byte[16], cts.Token).AsTask()));
        }
    }

    [Fact]
    public async Task ReadWhenThePeerCloses_ReturnsZero()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        await using var stream = new BlockingSocketStream(server);
        client.Dispose();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        Assert.Equal(0, await stream.ReadAsync(new byte[16], cts.Token));
    }

    [Fact]
    public async Task ConnectAsync_OnABlockingStream_ReportsAMissedDeadlineAsACancellation()
    {
        (Socket server, Socket client) = await ConnectedPairAsync();
        using (client)
        {
            var channel = new NbdChannel(new BlockingSocketStream(server));
            var options = new NegotiationOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300) };

            NbdProtocolException e = await Assert.ThrowsAsync<NbdProtocolException>(
                () => Task.Run(() => NbdServer.ConnectAsync(channel, options: options)));

            Assert.IsAssignableFrom<OperationCanceledException>(e.InnerException);
        }
    }
}
