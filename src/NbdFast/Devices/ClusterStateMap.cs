namespace NbdFast.Devices;

/// <summary>Where the current contents of one copy-on-write cluster live.</summary>
internal enum ClusterState
{
    /// <summary>Never written: the base device's bytes show through.</summary>
    Base = 0,
    /// <summary>The whole cluster is in the overlay file.</summary>
    Overlay = 1,
    /// <summary>Zeroed or trimmed and reported as a hole.</summary>
    ZeroHole = 2,
    /// <summary>Zeroed with NO_HOLE: reads as zeroes, reported as allocated.</summary>
    ZeroAllocated = 3,
}

/// <summary>
/// Two bits per cluster, packed 32 to a word, so a 1 TiB device with 64 KiB clusters costs 4 MiB. Reads are
/// lock-free; changes use compare-and-swap on the word because neighbouring clusters share it and may be
/// changed at the same time by requests holding different cluster locks.
/// </summary>
internal sealed class ClusterStateMap
{
    private const int PerWord = 32;

    private readonly long[] _words;

    public ClusterStateMap(long clusterCount)
    {
        long words = (clusterCount + PerWord - 1) / PerWord;
        if (words > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(clusterCount), "The device has too many clusters for the overlay map.");
        }
        ClusterCount = clusterCount;
        _words = new long[words];
    }

    public long ClusterCount { get; }

    public ClusterState Get(long cluster)
    {
        long word = Volatile.Read(ref _words[cluster / PerWord]);
        return (ClusterState)((word >> Shift(cluster)) & 3);
    }

    public void Set(long cluster, ClusterState state)
    {
        ref long word = ref _words[cluster / PerWord];
        int shift = Shift(cluster);
        long mask = 3L << shift;
        long value = (long)state << shift;
        long seen = Volatile.Read(ref word);
        while (true)
        {
            long wanted = (seen & ~mask) | value;
            long previous = Interlocked.CompareExchange(ref word, wanted, seen);
            if (previous == seen)
            {
                return;
            }
            seen = previous;
        }
    }

    /// <summary>
    /// Sets clusters <paramref name="first"/> to <paramref name="last"/> inclusive. The caller holds the cluster
    /// lock on the whole range, so words lying entirely inside it are stored outright (a trim of a terabyte
    /// touches a few hundred thousand words, not millions of clusters); only the two edge words need CAS.
    /// </summary>
    public void SetRange(long first, long last, ClusterState state)
    {
        long cluster = first;
        for (; cluster <= last && cluster % PerWord != 0; cluster++)
        {
            Set(cluster, state);
        }
        long filled = unchecked((long)state * 0x5555_5555_5555_5555L); // the two-bit state repeated 32 times
        for (; last - cluster + 1 >= PerWord; cluster += PerWord)
        {
            Volatile.Write(ref _words[cluster / PerWord], filled);
        }
        for (; cluster <= last; cluster++)
        {
            Set(cluster, state);
        }
    }

    /// <summary>True when every cluster from <paramref name="first"/> to <paramref name="last"/> inclusive is in <paramref name="state"/>.</summary>
    public bool All(long first, long last, ClusterState state)
    {
        for (long cluster = first; cluster <= last; cluster++)
        {
            if (Get(cluster) != state)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The first cluster after <paramref name="first"/> (up to <paramref name="limit"/>, exclusive) whose state differs.</summary>
    public long EndOfRun(long first, long limit)
    {
        ClusterState state = Get(first);
        long cluster = first + 1;
        while (cluster < limit && Get(cluster) == state)
        {
            cluster++;
        }
        return cluster;
    }

    /// <summary>How many clusters are in <paramref name="state"/> (a snapshot; for statistics and tests).</summary>
    public long Count(ClusterState state)
    {
        long count = 0;
        for (long cluster = 0; cluster < ClusterCount; cluster++)
        {
            count += Get(cluster) == state ? 1 : 0;
        }
        return count;
    }

    private static int Shift(long cluster) => (int)(cluster % PerWord) * 2;
}
