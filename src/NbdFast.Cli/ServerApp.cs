using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using NbdFast.Cli.Exports;
using NbdFast.Cli.Listening;
using NbdFast.Cli.Logging;
using NbdFast.Cli.Serving;

namespace NbdFast.Cli;

/// <summary>
/// The running server: exports, transports, listeners, metrics and pid file, started in that order (every
/// start-up failure is one <see cref="UsageException"/> line) and shut down gracefully on request.
/// </summary>
internal sealed class ServerApp : IAsyncDisposable
{
    private readonly CliSettings _settings;
    private readonly ILogger _log;
    private readonly ExportRegistry _exports;
    private readonly NbdUringEngine? _uring;
    private readonly NbdTlsOptions? _tls;
    private readonly List<Socket> _listeners;
    private readonly MetricsEndpoint? _metrics;
    private readonly Server _server;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly SemaphoreSlim _reloading = new(1, 1);
    private int _signals;
    private bool _stopped;
    private bool _abandoned;

    private ServerApp(CliSettings settings, ILogger log, ExportRegistry exports, NbdUringEngine? uring, NbdTlsOptions? tls,
        List<Socket> listeners, MetricsEndpoint? metrics)
    {
        _settings = settings;
        _log = log;
        _exports = exports;
        _uring = uring;
        _tls = tls;
        _listeners = listeners;
        _metrics = metrics;
        _server = new Server(settings, SessionSettings.From(settings, uring, tls), exports, log);
    }

    public static async Task<ServerApp> StartAsync(CliSettings settings, ILogger log)
    {
        NbdTlsOptions? tls = TlsLoader.Load(settings);
        ExportRegistry exports = await ExportRegistry.OpenAsync(settings.Exports, log).ConfigureAwait(false);
        NbdUringEngine? uring = null;
        List<Socket>? listeners = null;
        MetricsEndpoint? metrics = null;
        try
        {
            uring = StartUring(settings, tls, log);
            listeners = OpenListeners(settings);
            metrics = StartMetrics(settings, log);
            if (settings.PidFile is string pidFile)
            {
                WritePidFile(pidFile);
            }
            return new ServerApp(settings, log, exports, uring, tls, listeners, metrics);
        }
        catch
        {
            metrics?.Dispose();
            listeners?.ForEach(l => l.Dispose());
            uring?.Dispose();
            await exports.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Serves until a shutdown signal, then drains; returns the exit status.</summary>
    public async Task<int> RunAsync()
    {
        // The "serving" line tells scripts and tests that signals are handled now: it must not come before the
        // SignalHandler exists, or a SIGHUP/SIGTERM right after it meets the default action and kills the process.
        _log.Serving(ExportSet.Describe(_exports.Specs), string.Join(", ", _listeners.Select(ListenerSet.Describe)), DescribeTransport(_uring, _tls));
        await _server.AcceptAsync(_listeners, _shutdown.Token).ConfigureAwait(false);
        _log.ShuttingDown(_server.Connections.Count, _settings.ShutdownTimeout.TotalSeconds);
        if (!await _server.Connections.WaitAllAsync(_settings.ShutdownTimeout).ConfigureAwait(false))
        {
            _log.ShutdownTimeout(_server.Connections.Count);
            if (!await _server.Connections.CloseAllAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false))
            {
                // Something (a hung device) still holds a session: leave devices and reactors alone rather than
                // close files under requests the kernel may still be running, and exit.
                _abandoned = true;
            }
        }
        if (!_abandoned)
        {
            await _exports.FlushAsync().ConfigureAwait(false);
        }
        Volatile.Write(ref _stopped, true);
        _log.Stopped();
        return 0;
    }

    /// <summary>SIGINT/SIGTERM: the first starts a graceful shutdown, the second exits at once.</summary>
    public void RequestShutdown()
    {
        if (Volatile.Read(ref _stopped))
        {
            return; // already stopped and on the way out
        }
        if (Interlocked.Increment(ref _signals) == 1)
        {
            _shutdown.Cancel();
            return;
        }
        _log.SecondSignal();
        Environment.Exit(1);
    }

    /// <summary>SIGHUP: re-reads --config; a bad file is logged and the current exports stay.</summary>
    public async Task ReloadAsync()
    {
        if (_settings.ConfigPath is not string path)
        {
            _log.NothingToReload();
            return;
        }
        await _reloading.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _stopped))
            {
                return; // shutting down: the registry is about to be disposed
            }
            (int added, int removed, int kept) = await _exports.ReloadAsync(ConfigFile.Load(path)).ConfigureAwait(false);
            _log.Reloaded(path, added, removed, kept);
        }
        catch (UsageException e)
        {
            _log.ReloadFailed(path, e.Message);
        }
        finally
        {
            _reloading.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Volatile.Write(ref _stopped, true);
        _metrics?.Dispose();
        _listeners.ForEach(l => l.Dispose());
        // A reload in progress finishes before the registry goes (it checks _stopped once it has the lock).
        await _reloading.WaitAsync().ConfigureAwait(false);
        if (!_abandoned)
        {
            _uring?.Dispose();
            await _exports.DisposeAsync().ConfigureAwait(false);
        }
        foreach (string path in _settings.Listen.UnixSockets)
        {
            File.Delete(path);
        }
        if (_settings.PidFile is string pidFile)
        {
            File.Delete(pidFile);
        }
        _shutdown.Dispose();
        // _reloading is not disposed: a SIGHUP task may still be waiting on it; it checks _stopped and leaves.
    }

    private static NbdUringEngine? StartUring(CliSettings settings, NbdTlsOptions? tls, ILogger log)
    {
        // TLS sessions run on the sockets transport (the reactor speaks clear text only), so no reactors then.
        if (settings.Io == IoMode.Sockets || tls is not null)
        {
            return null;
        }
        NbdUringEngine? uring = NbdUringEngine.TryCreate(settings.Threads, out string? reason);
        if (uring is null)
        {
            if (settings.Io == IoMode.Uring)
            {
                throw new UsageException($"--io uring: {reason}");
            }
            log.UringUnavailable(reason ?? "unknown reason");
        }
        return uring;
    }

    private static List<Socket> OpenListeners(CliSettings settings)
    {
        try
        {
            return ListenerSet.Open(settings.Listen);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"cannot listen: {e.Message}");
        }
    }

    private static MetricsEndpoint? StartMetrics(CliSettings settings, ILogger log)
    {
        if (settings.Metrics is not string address)
        {
            return null;
        }
        try
        {
            MetricsEndpoint endpoint = MetricsEndpoint.Start(address);
            log.MetricsListening(endpoint.Url);
            return endpoint;
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            throw new UsageException($"--metrics: {e.Message}");
        }
    }

    private static void WritePidFile(string path)
    {
        try
        {
            File.WriteAllText(path, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--pidfile: {e.Message}");
        }
    }

    private static string DescribeTransport(NbdUringEngine? uring, NbdTlsOptions? tls) =>
        (uring is null ? "sockets" : $"io_uring, {uring.Threads} reactor threads, {uring.Description}") +
        (tls is null ? "" : tls.Mode == NbdTlsMode.Required ? "; TLS required" : "; TLS optional");
}
