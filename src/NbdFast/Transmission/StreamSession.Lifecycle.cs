using System.Runtime.ExceptionServices;

namespace NbdFast.Transmission;

/// <summary>
/// How a stream session ends other than by the client: graceful shutdown (drain, flush, linger), the idle
/// timeout, and the host's hard stop. Reads and sends share one stop token that only fires when no request
/// is owed a reply (or the connection is already unusable), so ending a read never drops an answer.
/// </summary>
internal sealed partial class StreamSession
{
    /// <summary>The message sent with NBD_ESHUTDOWN.</summary>
    public const string ShutdownMessage = "the server is shutting down";

    private readonly CancellationTokenSource _stop = new();
    private int _stopReason;
    private int _shuttingDown;
    private volatile bool _aborted;
    private Task? _drain;
    private Timer? _idleTimer;
    private long _lastActivity;

    private SessionEnd? StopReason => Volatile.Read(ref _stopReason) is int reason and > 0 ? (SessionEnd)(reason - 1) : null;

    /// <summary>Ends reading (and any send still blocked); the first reason given is the one reported.</summary>
    private void Stop(SessionEnd reason)
    {
        Interlocked.CompareExchange(ref _stopReason, (int)reason + 1, 0);
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Hard stop, from any thread: ends reading and sending at once and skips the final flush. The caller
    /// closes the underlying connection, which fails whatever I/O is still pending. Requests already in
    /// the device still run to completion before <see cref="RunAsync"/> returns (their replies are dropped).
    /// </summary>
    public void Abort()
    {
        _aborted = true;
        Stop(SessionEnd.Aborted);
    }

    /// <summary>The host's shutdown token fired (any thread): refuse new requests, then drain, flush and linger.</summary>
    private void BeginShutdown()
    {
        if (Interlocked.Exchange(ref _shuttingDown, 1) != 0)
        {
            return;
        }
        _budget.BeginDrain();
        // Off the canceller's thread: the flush may block, and the host cancels from its signal handler.
        Volatile.Write(ref _drain, Task.Run(DrainFlushAndLingerAsync));
    }

    private async Task DrainFlushAndLingerAsync()
    {
        await _budget.WhenQuietAsync().ConfigureAwait(false);
        if (!_aborted && !_context.ReadOnly)
        {
            // Every write acknowledged on this connection completed before this point: the flush covers them.
            await _context.Device.FlushAsync().ConfigureAwait(false);
        }
        TimeSpan linger = _context.Options.ShutdownLinger;
        if (linger == TimeSpan.Zero)
        {
            Stop(SessionEnd.Shutdown);
            return;
        }
        Interlocked.CompareExchange(ref _stopReason, (int)SessionEnd.Shutdown + 1, 0);
        try
        {
            _stop.CancelAfter(linger);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>After the read loop and every request are done: stop the timer, wait for the drain and report a failed flush.</summary>
    private async Task FinishAsync()
    {
        if (_idleTimer is not null)
        {
            await _idleTimer.DisposeAsync().ConfigureAwait(false);
        }
        Exception? flushError = null;
        if (Volatile.Read(ref _drain) is Task drain)
        {
            try
            {
                await drain.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                flushError = e;
            }
        }
        _stop.Dispose();
        if (flushError is not null)
        {
            ExceptionDispatchInfo.Throw(flushError);
        }
    }

    private void StartIdleTimer()
    {
        TimeSpan idle = _context.Options.IdleTimeout;
        if (idle == Timeout.InfiniteTimeSpan)
        {
            return;
        }
        _lastActivity = Environment.TickCount64;
        _idleTimer = new Timer(static s => ((StreamSession)s!).OnIdleTimer(), this, idle, Timeout.InfiniteTimeSpan);
    }

    /// <summary>A request header arrived or a request finished: the idle clock restarts.</summary>
    private void NoteActivity()
    {
        if (_idleTimer is not null)
        {
            Volatile.Write(ref _lastActivity, Environment.TickCount64);
        }
    }

    /// <summary>Ends the session once it has been quiet for the whole timeout; otherwise looks again when it could be.</summary>
    private void OnIdleTimer()
    {
        if (Volatile.Read(ref _shuttingDown) != 0 || _stop.IsCancellationRequested)
        {
            return;
        }
        long timeout = (long)_context.Options.IdleTimeout.TotalMilliseconds;
        long quietFor = Environment.TickCount64 - Volatile.Read(ref _lastActivity);
        bool quiet = _budget.IsQuiet;
        if (quiet && quietFor >= timeout)
        {
            Stop(SessionEnd.IdleTimeout);
            return;
        }
        long due = quiet ? timeout - quietFor : timeout;
        try
        {
            _idleTimer?.Change(Math.Max(due, 1), Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
