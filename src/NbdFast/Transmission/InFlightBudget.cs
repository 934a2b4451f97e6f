namespace NbdFast.Transmission;

/// <summary>
/// Bounds what one connection may have in flight (requests and payload bytes). The reader acquires before
/// it reads a payload or starts a request; when the budget is spent it waits, which stops reading the
/// socket, so a client that never reads replies cannot make the server grow. A single request larger than
/// the byte budget is still admitted when nothing else is in flight.
/// It also knows whether the reader is in the middle of a request and whether a graceful shutdown began,
/// under the same lock, so "nothing in flight" can never miss a request the reader is about to start.
/// </summary>
internal sealed class InFlightBudget(int maxRequests, long maxBytes, Diagnostics.ConnectionMetrics? metrics = null)
{
    private readonly Lock _lock = new();
    private int _requests;
    private long _bytes;
    private bool _readerBusy;
    private bool _draining;
    private TaskCompletionSource? _waiter;

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Nothing in flight and the reader waiting for a header.</summary>
    public bool IsQuiet
    {
        get
        {
            lock (_lock)
            {
                return _requests == 0 && !_readerBusy;
            }
        }
    }

    /// <summary>
    /// The reader has a new request header: true to serve it; false once draining began, when it must be
    /// answered with ESHUTDOWN instead. A true result must be matched by <see cref="EndRequest"/>.
    /// </summary>
    public bool TryBeginRequest()
    {
        lock (_lock)
        {
            if (_draining)
            {
                return false;
            }
            _readerBusy = true;
            return true;
        }
    }

    /// <summary>The reader is done with the request (started, or answered inline).</summary>
    public void EndRequest()
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _readerBusy = false;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
    }

    /// <summary>Graceful shutdown: from now on <see cref="TryBeginRequest"/> refuses.</summary>
    public void BeginDrain()
    {
        lock (_lock)
        {
            _draining = true;
        }
    }

    public async ValueTask AcquireAsync(long bytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_requests == 0 || (_requests < maxRequests && _bytes + bytes <= maxBytes))
                {
                    _requests++;
                    _bytes += bytes;
                    return;
                }
                wait = WaitLocked();
            }
            metrics?.NoteBudgetStall();
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Release(long bytes)
    {
        TaskCompletionSource? waiter;
        lock (_lock)
        {
            _requests--;
            _bytes -= bytes;
            waiter = _waiter;
            _waiter = null;
        }
        waiter?.TrySetResult();
    }

    /// <summary>Completes when nothing is in flight.</summary>
    public async Task WhenIdleAsync()
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_requests == 0)
                {
                    return;
                }
                wait = WaitLocked();
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Completes when nothing is in flight and the reader is not in the middle of a request.</summary>
    public async Task WhenQuietAsync()
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_requests == 0 && !_readerBusy)
                {
                    return;
                }
                wait = WaitLocked();
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>Every waiter shares one task, completed (and replaced) at the next change.</summary>
    private Task WaitLocked()
    {
        _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _waiter.Task;
    }
}
