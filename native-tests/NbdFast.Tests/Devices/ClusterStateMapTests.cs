using NbdFast.Devices;

namespace NbdFast.Tests.Devices;

/// <summary>The copy-on-write cluster map: two bits per cluster, ranges set word by word.</summary>
public sealed class ClusterStateMapTests
{
    [Fact]
    public void SetRange_MatchesSettingEachCluster()
    {
        const int Clusters = 300;
        var random = new Random(91);
        var map = new ClusterStateMap(Clusters);
        var model = new ClusterState[Clusters];
        for (int step = 0; step < 2000; step++)
        {
            int first = random.Next(Clusters);
            int last = first + random.Next(Math.Min(Clusters - first, step % 3 == 0 ? 200 : 40));
            var state = (ClusterState)random.Next(4);
            map.SetRange(first, last, state);
            Array.Fill(model, state, first, last - first + 1);
            if (step % 50 == 0)
            {
                for (int c = 0; c < Clusters; c++)
                {
                    Assert.Equal(model[c], map.Get(c));
                }
            }
        }
        for (int c = 0; c < Clusters; c++)
        {
            Assert.Equal(model[c], map.Get(c));
        }
        Assert.Equal(model.Count(s => s == ClusterState.Overlay), map.Count(ClusterState.Overlay));
        int runEnd = 6;
        while (runEnd < Clusters && model[runEnd] == model[5])
        {
            runEnd++;
        }
        Assert.Equal(runEnd, map.EndOfRun(5, Clusters));
    }

    [Fact]
    public void All_And_EndOfRun()
    {
        var map = new ClusterStateMap(100);
        map.SetRange(10, 73, ClusterState.Overlay);
        Assert.True(map.All(10, 73, ClusterState.Overlay));
        Assert.False(map.All(9, 73, ClusterState.Overlay));
        Assert.False(map.All(10, 74, ClusterState.Overlay));
        Assert.Equal(74, map.EndOfRun(10, 100));
        Assert.Equal(50, map.EndOfRun(10, 50));
        Assert.Equal(10, map.EndOfRun(0, 100));
        Assert.Equal(100, map.EndOfRun(74, 100));
    }
}
