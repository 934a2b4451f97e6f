using System.Diagnostics;
using System.Net.Sockets;
using NbdFast.Devices;

namespace NbdFast.Cli;

/// <summary>Accepts clients on every listener and serves each on its own task until shutdown.</summary>
internal sealed class Server(CliSettings settings, NbdExport export, Log log, NbdUringEngine? uring, NbdTlsOptions? tls)
{
    private readonly HashSet<Task> _connections = [];
    private readonly Lock _lock = new();
    private long _nextId;

    public async Task RunAsync(IReadOnlyList<Socket> listeners, CancellationToken shutdown)
    {
        using CancellationTokenRegistration stop = shutdown.Register(() => listeners.ToList().ForEach(l => l.Dispose()));
        await Task.WhenAll(listeners.Select(l => AcceptLoopAsync(l, shutdown))).ConfigureAwait(false);
        Task[] remaining;
        lock (_lock)
        {
            remaining = [.. _connections];
        }
        // In-flight requests are finished and answered before exit; a stuck client cannot hold us forever.
        await Task.WhenAny(Task.WhenAll(remaining), Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
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
                log.Warn($"accept failed: {e.Message}");
                continue;
            }
            long id = Interlocked.Increment(ref _nextId);
            // With io_uring the handshake makes blocking calls, so it gets a thread of its own.
            Task task = uring is null || tls is not null
                ? ServeClientAsync(client, id, shutdown)
                : Task.Factory.StartNew(() => ServeClientAsync(client, id, shutdown), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
            lock (_lock)
            {
                _connections.Add(task);
            }
            _ = task.ContinueWith(t =>
            {
                lock (_lock)
                {
                    _connections.Remove(t);
                }
            }, TaskScheduler.Default);
        }
    }

    private async Task ServeClientAsync(Socket socket, long id, CancellationToken shutdown)
    {
        if (uring is null || tls is not null)
        {
            await Task.Yield();
        }
        string peer = socket.RemoteEndPoint?.ToString() is { Length: > 0 } p ? p : "unix";
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }
        var started = Stopwatch.StartNew();
        var channel = new NbdChannel(socket, uring, tls);
        string exportName = "?";
        try
        {
            IReadOnlyList<string>? offer = settings.NoList ? null : [settings.ExportName];
            (string name, NbdConnection connection) = await NbdServer.ConnectAsync(channel, offer, ResolveAsync, cancellationToken: shutdown).ConfigureAwait(false);
            exportName = name;
            await using (connection.ConfigureAwait(false))
            {
                log.Info($"connection {id} from {peer}: export '{Log.Escape(name)}'{(connection.TlsActive ? " over TLS" : "")}");
                await connection.ServeAsync(cancellationToken: shutdown).ConfigureAwait(false);
            }
            log.Info($"connection {id} closed after {started.Elapsed.TotalSeconds:F1} s");
        }
        catch (ClientRequestedAbortException)
        {
            log.Info($"connection {id} from {peer}: client aborted the handshake");
        }
        catch (NbdProtocolException e)
        {
            log.Info($"connection {id} from {peer}: {e.Message}");
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            log.Warn($"connection {id} from {peer} (export '{Log.Escape(exportName)}') failed: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            await channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ValueTask<NbdExport?> ResolveAsync(string name, CancellationToken cancellationToken) =>
        ValueTask.FromResult(name == settings.ExportName ? export : null);
}
