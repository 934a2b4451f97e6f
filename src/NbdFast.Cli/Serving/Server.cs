using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using NbdFast.Cli.Exports;
using NbdFast.Cli.Listening;
using NbdFast.Cli.Logging;

namespace NbdFast.Cli.Serving;

/// <summary>
/// Accepts clients on every listener, applies the accept-time limits (--allow, --max-connections,
/// --max-handshakes) before any NBD byte, and runs each admitted client as a <see cref="ClientSession"/>.
/// </summary>
internal sealed class Server(CliSettings settings, SessionSettings sessionSettings, ExportRegistry exports, ILogger log)
{
    private readonly PeerFilter _filter = new(settings.Listen.Allow);
    private long _nextId;

    public ConnectionTracker Connections { get; } = new();

    /// <summary>Accepts until <paramref name="shutdown"/> fires; the listeners are closed then.</summary>
    public async Task AcceptAsync(IReadOnlyList<Socket> listeners, CancellationToken shutdown)
    {
        using CancellationTokenRegistration stop = shutdown.Register(() => listeners.ToList().ForEach(l => l.Dispose()));
        await Task.WhenAll(listeners.Select(l => AcceptLoopAsync(l, shutdown))).ConfigureAwait(false);
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken shutdown)
    {
        while (!shutdown.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(shutdown).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException && shutdown.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                log.AcceptFailed(e.Message);
                // EMFILE and friends: back off instead of spinning on a listener that keeps failing.
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            if (Admit(client))
            {
                Start(client, shutdown);
            }
            else
            {
                client.Dispose();
            }
        }
    }

    private bool Admit(Socket client)
    {
        string peer = client.RemoteEndPoint?.ToString() is { Length: > 0 } p ? p : "unix";
        if (!_filter.Allows(client))
        {
            log.PeerDenied(peer);
            return false;
        }
        if (Connections.Count >= settings.Limits.MaxConnections)
        {
            log.ConnectionLimit(peer, settings.Limits.MaxConnections);
            return false;
        }
        if (Connections.Handshakes >= settings.Limits.MaxHandshakes)
        {
            log.HandshakeLimit(peer, settings.Limits.MaxHandshakes);
            return false;
        }
        if (client.AddressFamily != AddressFamily.Unix)
        {
            client.NoDelay = true;
            // Dead peers (a crashed host, a pulled cable) are noticed and their resources freed.
            client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        }
        return true;
    }

    private void Start(Socket client, CancellationToken shutdown)
    {
        Connections.HandshakeStarted();
        var session = new ClientSession(Interlocked.Increment(ref _nextId), client, sessionSettings, exports, Connections, log);
        // With io_uring the handshake makes blocking socket calls, so it gets a thread of its own.
        Task task = sessionSettings.Uring is null || sessionSettings.Tls is not null
            ? Task.Run(() => session.RunAsync(shutdown), CancellationToken.None)
            : Task.Factory.StartNew(() => session.RunAsync(shutdown), CancellationToken.None,
                TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        Connections.Add(session, task);
    }
}
