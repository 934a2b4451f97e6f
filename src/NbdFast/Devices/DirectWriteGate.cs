namespace NbdFast.Devices;

/// <summary>
/// Keeps read-modify-write cycles of an O_DIRECT device from racing other writes. Aligned writes pass in
/// shared mode (a counter, no lock, usable from a reactor thread that must never block); a read-modify-write
/// takes exclusive mode and waits until no shared write is in flight, so the block it read cannot change
/// under it and the bytes it puts back are never stale. Unaligned writes are rare, so exclusion is cheap.
/// </summary>
internal sealed class DirectWriteGate
{
    private readonly Lock _exclusiveLock = new();
    private int _shared;
    private int _exclusive;

    /// <summary>Enters shared mode unless an exclusive writer holds or waits for the gate.</summary>
    public bool TryEnterShared()
    {
        if (Volatile.Read(ref _exclusive) != 0)
        {
            return false;
        }
        Interlocked.Increment(ref _shared);
        if (Volatile.Read(ref _exclusive) != 0)
        {
            Interlocked.Decrement(ref _shared);
            return false;
        }
        return true;
    }

    public void ExitShared() => Interlocked.Decrement(ref _shared);

    /// <summary>Blocks until this thread is the only writer.</summary>
    public void EnterExclusive()
    {
        _exclusiveLock.Enter();
        Interlocked.Increment(ref _exclusive);
        var spinner = new SpinWait();
        while (Volatile.Read(ref _shared) != 0)
        {
            spinner.SpinOnce();
        }
    }

    public void ExitExclusive()
    {
        Interlocked.Decrement(ref _exclusive);
        _exclusiveLock.Exit();
    }
}
