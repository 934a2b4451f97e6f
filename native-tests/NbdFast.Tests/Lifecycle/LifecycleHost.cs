using System.Net.Sockets;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Tests.Transmission;

namespace NbdFast.Tests.Lifecycle;

/// <summary>
/// One connection served the way a host with a shutdown signal serves it: ConnectAsync and ServeAsync both get
/// <see cref="Shutdown"/>'s token, and the connection is closed when serving returns. The transport is chosen
/// per test (an io_uring engine of the host's own, or the stream transport); the client is the raw client on
/// the other end of a loopback TCP connection, so tests see every byte.
/// </summary>
internal sealed class LifecycleHost : IAsyncDisposable
{
    /// <summary>How long a test waits for anything that must happen (generous: the machine may be loaded).</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly NbdUringEngine? _engine;
    private readonly TaskCompletionSource<NbdConnection> _connection = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LifecycleHost(RawNbdClient client, NbdUringEngine? engine)
    {
        Client = client;
        _engine = engine;
    }

    public RawNbdClient Client { get; private set; }

    /// <summary>The host's shutdown signal (SIGTERM, say).</summary>
    public CancellationTokenSource Shutdown { get; } = new();

    /// <summary>ConnectAsync alone (handshake tests), or ConnectAsync, ServeAsync and the close that follows.</summary>
    public Task Server { get; private set; } = Task.CompletedTask;

    /// <summary>The connection once ConnectAsync returned it.</summary>
    public Task<NbdConnection> Connection => _connection.Task;

    /// <summary>A host whose server side only runs ConnectAsync; a connection it returns is the test's to serve (closed at dispose).</summary>
    public static async Task<LifecycleHost> StartHandshakeAsync(Transport transport, NegotiationOptions? negotiation = null, NbdTlsOptions? tls = null)
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync();
        var host = new LifecycleHost(client, CreateEngine(transport));
        NbdChannel channel = host.CreateChannel(socket, transport, tls);
        host.Server = host.RunOnOwnThread(async () =>
        {
            (_, NbdConnection connection) = await NbdServer.ConnectAsync(channel, [""], null, negotiation, host.Shutdown.Token);
            host._connection.TrySetResult(connection);
        });
        return host;
    }

    /// <summary>
    /// A host serving <paramref name="device"/>; the client has negotiated <paramref name="style"/> and is in
    /// the transmission phase when this returns.
    /// </summary>
    public static async Task<LifecycleHost> StartServingAsync(Transport transport, IBlockDevice device, ReplyStyle style = ReplyStyle.Simple,
        ServeOptions? options = null, bool readOnly = false, int? socketBufferSize = null)
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync(socketBufferSize);
        var host = new LifecycleHost(client, CreateEngine(transport));
        NbdChannel channel = host.CreateChannel(socket, transport, tls: null);
        host.Server = host.RunOnOwnThread(async () =>
        {
            (_, NbdConnection connection) = await NbdServer.ConnectAsync(channel, [""], null, null, host.Shutdown.Token);
            host._connection.TrySetResult(connection);
            await using (connection)
            {
                await connection.ServeAsync(device, readOnly, options, host.Shutdown.Token);
            }
        });

        await client.StartAsync();
        if (style != ReplyStyle.Simple)
        {
            NbdOption option = style == ReplyStyle.Extended ? NbdOption.ExtendedHeaders : NbdOption.StructuredReply;
            Assert.Equal(NbdOptionReplyType.Ack, Assert.Single(await client.OptionAsync(option)).Type);
        }
        await client.GoAsync("");
        client.ExtendedHeaders = style == ReplyStyle.Extended;
        await host.Connection.WaitAsync(Patience);
        return host;
    }

    /// <summary>Swaps the client for one speaking through TLS (after STARTTLS).</summary>
    public void UseClient(RawNbdClient client) => Client = client;

    /// <summary>Waits for the server side to finish and rethrows what it threw.</summary>
    public Task ServerFinishedAsync() => Server.WaitAsync(Patience);

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        try
        {
            await Server.WaitAsync(Patience);
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // Tests assert on how the server side ended where it matters.
        }
        if (_connection.Task.IsCompletedSuccessfully)
        {
            await _connection.Task.Result.DisposeAsync();
        }
        Shutdown.Dispose();
        _engine?.Dispose();
    }

    private static NbdUringEngine? CreateEngine(Transport transport) => transport == Transport.Uring
        ? NbdUringEngine.TryCreate(1, out string? reason, registeredBufferBytes: 4 << 20)
            ?? throw new InvalidOperationException($"io_uring is unavailable, so the io_uring transport cannot be tested: {reason}")
        : null;

    private NbdChannel CreateChannel(Socket socket, Transport transport, NbdTlsOptions? tls)
    {
        NbdChannel channel = transport == Transport.Uring
            ? new NbdChannel(socket, _engine, tls)
            : new NbdChannel(new NetworkStream(socket, ownsSocket: true), tls);
        if (transport == Transport.Uring && tls is null && channel.Uring is null)
        {
            throw new InvalidOperationException("The channel did not take the io_uring engine.");
        }
        return channel;
    }

    /// <summary>The io_uring handshake makes blocking calls, so the server side gets a thread of its own.</summary>
    private Task RunOnOwnThread(Func<Task> body) =>
        Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap()
            .ContinueWith(t =>
            {
                if (!_connection.Task.IsCompleted)
                {
                    _connection.TrySetException(t.Exception?.InnerException ?? new InvalidOperationException("ConnectAsync returned no connection."));
                }
                return t;
            }, TaskScheduler.Default).Unwrap();
}
