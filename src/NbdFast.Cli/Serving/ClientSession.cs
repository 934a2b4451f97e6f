using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using NbdFast.Cli.Exports;
using NbdFast.Cli.Logging;
using NbdFast.Negotiation;

namespace NbdFast.Cli.Serving;

/// <summary>One client from accept to close: handshake, export lease, transmission, one log line each way.</summary>
internal sealed class ClientSession(long id, Socket socket, SessionSettings settings, ExportRegistry exports, ConnectionTracker tracker, ILogger log)
{
    private readonly NbdChannel _channel = new(socket, settings.Uring, settings.Tls);
    private readonly string _peer = socket.RemoteEndPoint?.ToString() is { Length: > 0 } p ? p : "unix";
    private NbdConnection? _connection;

    public long Id => id;

    public async Task RunAsync(CancellationToken shutdown)
    {
        var started = Stopwatch.StartNew();
        string exportName = "?";
        try
        {
            NbdConnection? connection = await HandshakeAsync(shutdown).ConfigureAwait(false);
            if (connection is null)
            {
                return;
            }
            await using (connection.ConfigureAwait(false))
            {
                exportName = ClientText.Echo(connection.ExportName);
                ExportLease? lease = exports.TryAcquire(connection.ExportName, connection.Export, out ExportRefusal refusal);
                if (lease is null)
                {
                    LogRefusal(refusal, exportName, connection);
                    return;
                }
                await using var held = lease.ConfigureAwait(false);
                log.ConnectionOpened(id, _peer, exportName, connection.TlsActive ? " over TLS" : "");
                try
                {
                    await connection.ServeAsync(settings.Serve, shutdown).ConfigureAwait(false);
                }
                finally
                {
                    LogClosed(connection, exportName, started.Elapsed.TotalSeconds);
                }
            }
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            log.HandshakeAtShutdown(id, _peer);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or NbdProtocolException)
        {
            log.ProtocolProblem(id, _peer, e.Message);
        }
        catch (Exception e)
        {
            log.ConnectionFailed(id, _peer, exportName, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            await _channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One line when a served connection ends, however it ends, plus the limits it ran into.</summary>
    private void LogClosed(NbdConnection connection, string exportName, double seconds)
    {
        if (connection.SessionEnd == NbdSessionEnd.IdleTimeout)
        {
            log.IdleTimeout(id, _peer, settings.Serve.IdleTimeout.TotalSeconds);
        }
        if (connection.InFlightLimitStalls > 0)
        {
            log.InFlightLimit(id, _peer, connection.InFlightLimitStalls, settings.Serve.MaxInFlightRequests, settings.Serve.MaxInFlightBytes);
        }
        log.ConnectionClosed(id, _peer, exportName, seconds, connection.BytesRead, connection.BytesWritten);
    }

    /// <summary>Closes the connection hard (shutdown deadline passed); the session then ends promptly.</summary>
    public async ValueTask CloseAsync()
    {
        if (Volatile.Read(ref _connection) is NbdConnection connection)
        {
            await connection.CloseAsync().ConfigureAwait(false);
        }
        else
        {
            await _channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<NbdConnection?> HandshakeAsync(CancellationToken shutdown)
    {
        // The server counted this handshake in at accept (so a burst of accepts cannot overshoot the limit).
        try
        {
            (_, NbdConnection connection) = await NbdServer.ConnectAsync(_channel, settings.NoList ? null : exports.Names,
                exports.ResolveAsync, settings.Negotiation, shutdown).ConfigureAwait(false);
            Volatile.Write(ref _connection, connection);
            return connection;
        }
        catch (ClientRequestedAbortException)
        {
            log.HandshakeAborted(id, _peer);
            return null;
        }
        catch (NbdProtocolException e) when (e.InnerException is OperationCanceledException && !shutdown.IsCancellationRequested)
        {
            log.HandshakeTimeout(id, _peer, settings.Negotiation.HandshakeTimeout.TotalSeconds);
            return null;
        }
        finally
        {
            tracker.HandshakeEnded();
        }
    }

    private void LogRefusal(ExportRefusal refusal, string exportName, NbdConnection connection)
    {
        if (refusal == ExportRefusal.Full)
        {
            log.ExportLimit(id, _peer, exportName, exports.LimitOf(connection.ExportName));
        }
        else
        {
            log.ExportGone(id, _peer, exportName);
        }
    }
}
