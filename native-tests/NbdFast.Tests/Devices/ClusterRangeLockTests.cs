using NbdFast.Devices;

namespace NbdFast.Tests.Devices;

/// <summary>The copy-on-write device's cluster lock: disjoint ranges pass, overlapping ones queue in arrival order.</summary>
public sealed class ClusterRangeLockTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task DisjointRanges_AreGrantedAtOnce()
    {
        var locks = new ClusterRangeLock();
        ValueTask<ClusterRangeLock.Entry> a = locks.AcquireAsync(0, 3);
        ValueTask<ClusterRangeLock.Entry> b = locks.AcquireAsync(4, 4);
        ValueTask<ClusterRangeLock.Entry> c = locks.AcquireAsync(5, 100);
        Assert.True(a.IsCompletedSuccessfully && b.IsCompletedSuccessfully && c.IsCompletedSuccessfully);
        Assert.Equal(3, locks.Count);
        locks.Release(await a);
        locks.Release(await b);
        locks.Release(await c);
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task OverlappingRanges_WaitForEveryEarlierOverlap_InArrivalOrder()
    {
        var locks = new ClusterRangeLock();
        ClusterRangeLock.Entry first = await locks.AcquireAsync(0, 1);
        Task<ClusterRangeLock.Entry> second = locks.AcquireAsync(1, 2).AsTask();
        // Overlaps only the second, which is still waiting: it must queue behind it, not jump ahead.
        Task<ClusterRangeLock.Entry> third = locks.AcquireAsync(2, 3).AsTask();
        // Overlaps nobody: granted although others wait.
        ClusterRangeLock.Entry fourth = await locks.AcquireAsync(10, 10);
        Assert.False(second.IsCompleted);
        Assert.False(third.IsCompleted);

        locks.Release(first);
        ClusterRangeLock.Entry secondHeld = await second.WaitAsync(Patience);
        Assert.False(third.IsCompleted);

        locks.Release(secondHeld);
        locks.Release(await third.WaitAsync(Patience));
        locks.Release(fourth);
        Assert.Equal(0, locks.Count);
    }
}
