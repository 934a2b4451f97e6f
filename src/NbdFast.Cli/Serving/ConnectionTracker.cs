namespace NbdFast.Cli.Serving;

/// <summary>
/// The clients being served, so that shutdown can wait for them and, past its deadline, close them; and the
/// counts the connection limits look at.
/// </summary>
internal sealed class ConnectionTracker
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, (ClientSession Session, Task Task)> _sessions = [];
    private int _handshakes;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    public int Handshakes => Volatile.Read(ref _handshakes);

    public void Add(ClientSession session, Task task)
    {
        lock (_lock)
        {
            _sessions.Add(session.Id, (session, task));
        }
        _ = task.ContinueWith((_, state) => Remove((long)state!), session.Id, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public void HandshakeStarted() => Interlocked.Increment(ref _handshakes);

    public void HandshakeEnded() => Interlocked.Decrement(ref _handshakes);

    /// <summary>Waits until every session has ended or <paramref name="timeout"/> passes; true when all ended.</summary>
    public async Task<bool> WaitAllAsync(TimeSpan timeout)
    {
        Task all = Task.WhenAll(Snapshot().Select(s => s.Task));
        return await Task.WhenAny(all, Task.Delay(timeout)).ConfigureAwait(false) == all;
    }

    /// <summary>
    /// Closes every session hard (its socket), all at once, for the end of a shutdown that ran out of time; true
    /// when they all ended within <paramref name="timeout"/> (a hung device can keep one from ending).
    /// </summary>
    public async Task<bool> CloseAllAsync(TimeSpan timeout)
    {
        Task closing = Task.WhenAll(Snapshot().Select(s => s.Session.CloseAsync().AsTask()));
        if (await Task.WhenAny(closing, Task.Delay(timeout)).ConfigureAwait(false) != closing)
        {
            return false;
        }
        return await WaitAllAsync(timeout).ConfigureAwait(false);
    }

    private (ClientSession Session, Task Task)[] Snapshot()
    {
        lock (_lock)
        {
            return [.. _sessions.Values];
        }
    }

    private void Remove(long id)
    {
        lock (_lock)
        {
            _sessions.Remove(id);
        }
    }
}
