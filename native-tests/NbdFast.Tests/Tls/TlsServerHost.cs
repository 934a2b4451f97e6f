using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>Which NbdChannel constructor the host uses.</summary>
public enum TlsChannelKind
{
    /// <summary><c>new NbdChannel(socket, null, tls)</c>.</summary>
    Socket,

    /// <summary><c>new NbdChannel(socket, uringEngine, tls)</c>: TLS must make the channel ignore the engine.</summary>
    SocketWithUringEngine,

    /// <summary><c>new NbdChannel(new NetworkStream(socket, true), tls)</c>.</summary>
    Stream,
}

/// <summary>What one connection to a <see cref="TlsServerHost"/> did on the server side.</summary>
public sealed class TlsServerConnection
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string? ExportName { get; internal set; }

    public bool Negotiated { get; internal set; }

    public bool TlsActive { get; internal set; }

    public bool StructuredReplies { get; internal set; }

    /// <summary>What ConnectAsync or ServeAsync threw; null when the connection ended cleanly.</summary>
    public Exception? Error { get; internal set; }

    public Task Completion => _done.Task;

    internal void Complete() => _done.TrySetResult();

    public override string ToString() =>
        $"export={ExportName ?? "(none)"} negotiated={Negotiated} tls={TlsActive} sr={StructuredReplies} " +
        $"error={(Error is null ? "none" : $"{Error.GetType().Name}: {Error.Message}")}";
}

/// <summary>
/// Hosts the library with TLS credentials the way an application would: an accept loop on 127.0.0.1 and,
/// per connection, <c>new NbdChannel(socket, null, tls)</c>, ConnectAsync with a resolver, and ServeAsync of
/// the resolved export. (The shared InProcessServer has no TLS knob.)
/// </summary>
public sealed class TlsServerHost : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly NbdTlsOptions? _tls;
    private readonly IReadOnlyList<string>? _offer;
    private readonly IReadOnlyDictionary<string, NbdExport> _exports;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<TlsServerConnection> _connections = new();
    private readonly ConcurrentDictionary<Task, byte> _handlers = new();
    private readonly Task _acceptLoop;

    private readonly TlsChannelKind _kind;
    private readonly NegotiationOptions? _negotiation;
    private readonly NbdUringEngine? _engine;

    public TlsServerHost(NbdTlsOptions? tls, IReadOnlyDictionary<string, NbdExport> exports, IReadOnlyList<string>? offer = null,
        TlsChannelKind kind = TlsChannelKind.Socket, NegotiationOptions? negotiation = null)
    {
        _tls = tls;
        _kind = kind;
        _negotiation = negotiation;
        if (kind == TlsChannelKind.SocketWithUringEngine)
        {
            _engine = NbdUringEngine.TryCreate(1, out string? reason, registeredBufferBytes: 1 << 20)
                ?? throw new InvalidOperationException("io_uring is unavailable: " + reason);
        }
        _exports = exports;
        _offer = offer ?? [.. exports.Keys];
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public IReadOnlyList<TlsServerConnection> Connections => [.. _connections];

    /// <summary>A plain-text raw client connected to the server.</summary>
    internal async Task<RawNbdClient> ConnectRawAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = new CancellationTokenSource(RawNbdClient.DefaultTimeout);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port), timeout.Token);
        return new RawNbdClient(new NetworkStream(socket, ownsSocket: true), socket);
    }

    /// <summary>Waits until every connection accepted so far has closed on the server side.</summary>
    public async Task<IReadOnlyList<TlsServerConnection>> WaitForIdleAsync(TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(15);
        Task all = Task.WhenAll(_connections.Select(c => c.Completion));
        if (await Task.WhenAny(all, Task.Delay(limit)) != all)
        {
            throw new TimeoutException($"Server connections still open after {limit.TotalSeconds:F0} s: {Describe()}");
        }
        return Connections;
    }

    /// <summary>Waits for the single connection of a test to end and returns it.</summary>
    public async Task<TlsServerConnection> SingleConnectionAsync()
    {
        IReadOnlyList<TlsServerConnection> connections = await WaitForIdleAsync();
        Assert.True(connections.Count == 1, Describe());
        return connections[0];
    }

    public string Describe()
    {
        var text = new StringBuilder($"{_connections.Count} connection(s)");
        foreach (TlsServerConnection connection in _connections)
        {
            text.AppendLine().Append(connection).Append(connection.Completion.IsCompleted ? " (closed)" : " (open)");
        }
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        await Task.WhenAny(Task.WhenAll(_handlers.Keys), Task.Delay(TimeSpan.FromSeconds(10)));
        _stopping.Dispose();
        _engine?.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            socket.NoDelay = true;
            var record = new TlsServerConnection();
            _connections.Enqueue(record);
            Task handler = Task.Run(() => HandleAsync(socket, record));
            _handlers.TryAdd(handler, 0);
            _ = handler.ContinueWith(t => _handlers.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(Socket socket, TlsServerConnection record)
    {
        try
        {
            NbdChannel channel = _kind switch
            {
                TlsChannelKind.Stream => new NbdChannel(new NetworkStream(socket, ownsSocket: true), _tls),
                TlsChannelKind.SocketWithUringEngine => new NbdChannel(socket, _engine, _tls),
                _ => new NbdChannel(socket, null, _tls),
            };
            if (_kind == TlsChannelKind.SocketWithUringEngine && _tls is not null && channel.Uring is not null)
            {
                await channel.DisposeAsync();
                throw new InvalidOperationException("A TLS channel kept the io_uring engine.");
            }
            (string name, NbdConnection connection) = await NbdServer.ConnectAsync(
                channel, _offer, ResolveAsync, _negotiation, _stopping.Token);
            await using (connection)
            {
                record.ExportName = name;
                record.Negotiated = true;
                record.TlsActive = connection.TlsActive;
                record.StructuredReplies = connection.StructuredReplies;
                await connection.ServeAsync(cancellationToken: _stopping.Token);
            }
        }
        catch (Exception e)
        {
            record.Error = e;
        }
        finally
        {
            record.Complete();
        }
    }

    private ValueTask<NbdExport?> ResolveAsync(string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_exports.GetValueOrDefault(name));
}

/// <summary>The client side of STARTTLS for raw tests: a TLS handshake over a raw client's stream.</summary>
internal static class RawTls
{
    /// <summary>
    /// Runs the TLS handshake (as "localhost", verifying the server against the test CA) over
    /// <paramref name="plain"/>'s stream and returns a raw client speaking through TLS. The new client owns the
    /// connection.
    /// </summary>
    public static async Task<RawNbdClient> UpgradeAsync(RawNbdClient plain, X509Certificate2? clientCertificate = null)
    {
        X509Certificate2Collection authorities = TestPki.Shared.LoadCaCollection();
        var ssl = new SslStream(plain.Stream, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }
                using var server = new X509Certificate2(certificate);
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(server);
            },
        };
        using var timeout = new CancellationTokenSource(RawNbdClient.DefaultTimeout);
        await ssl.AuthenticateAsClientAsync(options, timeout.Token);
        return new RawNbdClient(ssl, plain.Socket) { Timeout = plain.Timeout };
    }
}
