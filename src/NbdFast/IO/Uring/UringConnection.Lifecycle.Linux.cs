using System.Net.Sockets;
using System.Runtime.CompilerServices;
using NbdFast.Transmission;
using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>
/// How a ring connection ends other than by the client: graceful shutdown (refuse new requests with
/// ESHUTDOWN, finish those in flight, fsync once, linger), the idle timeout, and the host's hard stop. Other
/// threads only set a flag, shut the socket down and post work; everything else runs on the reactor. The
/// socket is only ever shut down here, never closed: the descriptor stays open (its handle is referenced)
/// until <see cref="Close"/>, when no submission of this connection is left in the kernel.
/// Timers are rare (per connection, not per request), so a managed timer that posts a preallocated work
/// item does the job without submissions whose lifetime would have to be managed at close.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    private enum FlushState : byte { None, Running, Done }

    private readonly TimerWork _timerWork;
    private int _stopRequested;
    private int _abortRequested;
    private bool _draining;
    private int _shutdownReplies;
    private FlushState _finalFlush;
    private Exception? _flushError;
    private Timer? _timer;
    private long _lastActivity;
    private long _lingerDeadline;

    /// <summary>
    /// Graceful shutdown, from any thread. Requests parsed from now on get ESHUTDOWN; the reactor finishes
    /// the rest, flushes, and lingers (see <see cref="ServeOptions.ShutdownLinger"/>).
    /// </summary>
    public void RequestStop()
    {
        Volatile.Write(ref _stopRequested, 1);
        _reactor.Post(new LifecycleWork(this, abort: false));
    }

    /// <summary>
    /// Hard stop, from any thread: pending receives and sends complete at once (shutdown(2)); queued replies
    /// are dropped; the connection closes as soon as the device operations already in the kernel (or on the
    /// executor) are done. No final flush.
    /// </summary>
    public void Abort()
    {
        Volatile.Write(ref _abortRequested, 1);
        ShutdownSocket();
        _reactor.Post(new LifecycleWork(this, abort: true));
    }

    private sealed class LifecycleWork(UringConnection connection, bool abort) : IReactorWork
    {
        public void Run(Reactor reactor)
        {
            if (connection._closed || connection._index < 0)
            {
                return; // not adopted yet: Run acts on the recorded request
            }
            if (abort)
            {
                connection.AbortOnReactor();
            }
            connection.MaybeClose();
        }
    }

    private void AbortOnReactor()
    {
        // Stop reading first: releasing a slot would otherwise resume parsing.
        StopReading(SessionEnd.Aborted);
        _broken = true;
        if (!_sendPosted)
        {
            // Nothing of the queue is in the kernel: it can go now. (A posted send fails on the shut-down
            // socket, and OnSent abandons the queue then.)
            AbandonReplies();
        }
    }

    /// <summary>Shuts both directions down; the receive and any send complete. Safe from any thread.</summary>
    private void ShutdownSocket()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Called from <see cref="MaybeClose"/>: notices a requested shutdown and flushes once nothing is in flight.</summary>
    private void AdvanceShutdown()
    {
        if (!_draining && Volatile.Read(ref _stopRequested) != 0)
        {
            _draining = true;
        }
        if (_draining && _finalFlush == FlushState.None && _inFlight == _shutdownReplies && _payloadSlot is null &&
            Volatile.Read(ref _abortRequested) == 0)
        {
            StartFinalFlush();
        }
    }

    private void StartFinalFlush()
    {
        _finalFlush = FlushState.Running;
        if (_context.ReadOnly || _memory is not null)
        {
            FinishFinalFlush(null);
            return;
        }
        if (_deviceFd >= 0)
        {
            // Every write answered on this connection has completed, so this fsync covers them all.
            Sqe* sqe = _reactor.GetSqe();
            sqe->Opcode = OpFsync;
            sqe->Fd = _ringDeviceFd;
            sqe->Flags = _fixedFileFlag;
            sqe->OpFlags = FsyncDataSync;
            sqe->UserData = Tag(OpKind.FinalFlush);
            _pendingOps++;
            return;
        }
        ValueTask pending;
        try
        {
            pending = _context.Device.FlushAsync();
        }
        catch (Exception e)
        {
            FinishFinalFlush(e);
            return;
        }
        if (pending.IsCompletedSuccessfully)
        {
            FinishFinalFlush(null);
            return;
        }
        _pendingOps++;
        _ = OffReactorCompletion.HandBackFlushAsync(_reactor, pending, error => new FlushDoneWork(this, error));
    }

    private sealed class FlushDoneWork(UringConnection connection, Exception? error) : IReactorWork
    {
        public void Run(Reactor reactor)
        {
            connection._pendingOps--;
            connection.FinishFinalFlush(error);
            connection.MaybeClose();
        }
    }

    /// <summary>The flush is done: linger, answering ESHUTDOWN, until the client leaves or the time is up.</summary>
    private void FinishFinalFlush(Exception? error)
    {
        _finalFlush = FlushState.Done;
        _flushError = error;
        if (_readStopped || Volatile.Read(ref _abortRequested) != 0)
        {
            return;
        }
        TimeSpan linger = _context.Options.ShutdownLinger;
        if (linger == TimeSpan.Zero)
        {
            EndSession(SessionEnd.Shutdown);
            return;
        }
        _lingerDeadline = Environment.TickCount64 + (long)linger.TotalMilliseconds;
        Schedule((long)linger.TotalMilliseconds);
    }

    /// <summary>Stops reading and shuts the socket down, which completes the pending receive; the close follows.</summary>
    private void EndSession(SessionEnd end)
    {
        SetEnd(end);
        StopReading(end);
        ShutdownSocket();
    }

    private void StartIdleTimer()
    {
        if (_context.Options.IdleTimeout != Timeout.InfiniteTimeSpan)
        {
            _lastActivity = Environment.TickCount64;
            Schedule((long)_context.Options.IdleTimeout.TotalMilliseconds);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NoteActivity()
    {
        if (_timer is not null)
        {
            _lastActivity = Environment.TickCount64;
        }
    }

    private void Schedule(long milliseconds)
    {
        _timer ??= new Timer(static s => ((UringConnection)s!).OnTimerFired(), this, Timeout.Infinite, Timeout.Infinite);
        _timer.Change(Math.Max(milliseconds, 1), Timeout.Infinite);
    }

    /// <summary>Timer thread: hop onto the reactor.</summary>
    private void OnTimerFired() => _reactor.Post(_timerWork);

    private sealed class TimerWork(UringConnection connection) : IReactorWork
    {
        public void Run(Reactor reactor) => connection.OnTimer();
    }

    private void OnTimer()
    {
        if (_closed || _readStopped)
        {
            return;
        }
        long now = Environment.TickCount64;
        if (_lingerDeadline != 0)
        {
            if (now >= _lingerDeadline)
            {
                EndSession(SessionEnd.Shutdown);
                MaybeClose();
            }
            else
            {
                Schedule(_lingerDeadline - now);
            }
            return;
        }
        if (_draining || _context.Options.IdleTimeout == Timeout.InfiniteTimeSpan)
        {
            return;
        }
        long timeout = (long)_context.Options.IdleTimeout.TotalMilliseconds;
        long quietFor = now - _lastActivity;
        bool quiet = _inFlight == 0 && _payloadSlot is null && _drainRemaining == 0;
        if (quiet && quietFor >= timeout)
        {
            EndSession(SessionEnd.IdleTimeout);
            MaybeClose();
            return;
        }
        Schedule(quiet ? timeout - quietFor : timeout);
    }
}
