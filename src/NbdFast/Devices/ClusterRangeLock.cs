namespace NbdFast.Devices;

/// <summary>
/// An asynchronous lock on ranges of clusters, first come first served among overlapping ranges. A request
/// queues at arrival and then waits for every earlier request whose range overlaps its own, so two writes
/// into one cluster never copy it up at the same time, while writes to other clusters proceed in parallel.
/// Nothing blocks a thread: the io_uring reactor may be the caller. Waiting only on earlier entries cannot
/// deadlock, and the earliest overlapping request always proceeds.
/// </summary>
internal sealed class ClusterRangeLock
{
    private readonly Lock _gate = new();
    // Holders and waiters in arrival order; short (bounded by the requests in flight).
    private readonly List<Entry> _entries = [];

    /// <summary>Waits until clusters <paramref name="first"/> to <paramref name="last"/> (inclusive) are this caller's.</summary>
    public async ValueTask<Entry> AcquireAsync(long first, long last)
    {
        var entry = new Entry(first, last);
        lock (_gate)
        {
            _entries.Add(entry);
        }
        while (FirstEarlierOverlap(entry) is { } earlier)
        {
            await earlier.ConfigureAwait(false);
        }
        return entry;
    }

    /// <summary>Gives the range back and lets the next overlapping waiter in.</summary>
    public void Release(Entry entry)
    {
        lock (_gate)
        {
            _entries.Remove(entry);
        }
        entry.Released.TrySetResult();
    }

    /// <summary>Requests in the queue (holding or waiting); for tests.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    private Task? FirstEarlierOverlap(Entry entry)
    {
        lock (_gate)
        {
            foreach (Entry other in _entries)
            {
                if (ReferenceEquals(other, entry))
                {
                    return null;
                }
                if (other.First <= entry.Last && entry.First <= other.Last)
                {
                    return other.Released.Task;
                }
            }
        }
        throw new InvalidOperationException("A cluster lock entry left the queue before it was released.");
    }

    /// <summary>One request's place in the queue.</summary>
    internal sealed class Entry(long first, long last)
    {
        public long First { get; } = first;
        public long Last { get; } = last;

        // Continuations run on the thread pool, never inside Release (which may run on a reactor thread).
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
