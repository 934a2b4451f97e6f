namespace NbdFast.Transmission;

/// <summary>
/// Bounds what one connection may have in flight (requests and payload bytes). The reader acquires before
/// it reads a payload or starts a request; when the budget is spent it waits, which stops reading the
/// socket, so a client that never reads replies cannot make the server grow. A single request larger than
/// the byte budget is still admitted when nothing else is in flight.
/// </summary>
internal sealed class InFlightBudget(int maxRequests, long maxBytes)
{
    private readonly Lock _lock = new();
    private int _requests;
    private long _bytes;
    private TaskCompletionSource? _waiter;

    public int Requests => Volatile.Read(ref _requests);

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
                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }
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
                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }
            await wait.ConfigureAwait(false);
        }
    }
}
