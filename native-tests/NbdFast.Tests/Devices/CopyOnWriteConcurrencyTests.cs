using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary>
/// Many requests at once on the same few clusters of a <see cref="CopyOnWriteDevice"/>, as a pipelining client
/// sends them. Each round cuts the device into disjoint pieces and runs a write, a zero, a trim or an exact
/// read on every piece in parallel, plus readers over arbitrary ranges racing them, against a base that yields
/// inside every read so copy-ups interleave. Afterwards the device must equal the model exactly (no lost
/// write, no stale copy-up), pieces nobody touched must have read back exactly, and every byte a racing reader
/// saw must be its value before or after the round (a half-built cluster would show up as neither).
/// </summary>
public sealed class CopyOnWriteConcurrencyTests
{
    private const int TestTimeout = 120_000;
    private const int Generations = 30;
    private const int RoundsPerGeneration = 10;

    [Theory(Timeout = TestTimeout)]
    [InlineData(512, 21)]
    [InlineData(4096, 22)]
    public async Task ParallelRequestsOnSharedClusters_MatchTheModel(int clusterSize, int seed)
    {
        int size = 8 * clusterSize + clusterSize / 2 + 7; // a short last cluster too
        var memory = new MemoryDevice(size);
        byte[] original = await DeviceContents.FillRandomAsync(memory, seed);
        var recorder = new RecordingDevice(memory, yieldOnRead: true);
        var random = new Random(seed);
        int maxPiece = clusterSize + clusterSize / 2;
        long exactReads = 0, racingReads = 0, copyUps = 0;

        // Every few rounds a fresh snapshot of the same base, so clusters keep being copied up from the base.
        for (int generation = 0; generation < Generations; generation++)
        {
            using var temp = new TempDirectory();
            await using var cow = new CopyOnWriteDevice(recorder, temp.FullPath, clusterSize: clusterSize);
            byte[] model = (byte[])original.Clone();
            for (int round = 0; round < RoundsPerGeneration; round++)
            {
                string where = $"generation {generation}, round {round}";
                byte[] before = (byte[])model.Clone();
                List<Task> tasks = [];
                for (int position = 0; position < size;)
                {
                    int length = Math.Min(size - position, 1 + random.Next(random.Next(4) == 0 ? 2 * clusterSize : maxPiece));
                    int offset = position;
                    position += length;
                    switch (random.Next(10))
                    {
                        case < 4:
                            byte[] data = new byte[length];
                            random.NextBytes(data);
                            data.CopyTo(model, offset);
                            copyUps += cow.StateOf(offset / clusterSize) == ClusterState.Base ? 1 : 0;
                            tasks.Add(Task.Run(async () => await cow.WriteAsync(offset, data, WriteFlags.None)));
                            break;
                        case < 6:
                            Array.Clear(model, offset, length);
                            tasks.Add(Task.Run(async () => await cow.WriteZeroesAsync(offset, length, WriteFlags.None)));
                            break;
                        case 6:
                            Array.Clear(model, offset, length);
                            tasks.Add(Task.Run(async () => await cow.WriteZeroesAsync(offset, length, WriteFlags.NoHole)));
                            break;
                        case 7:
                            Array.Clear(model, offset, length);
                            tasks.Add(Task.Run(async () => await cow.TrimAsync(offset, length, WriteFlags.None)));
                            break;
                        default:
                            // Nobody writes these bytes this round: they must read back exactly, mid-storm.
                            byte[] expected = before.AsSpan(offset, length).ToArray();
                            tasks.Add(Task.Run(async () =>
                            {
                                byte[] got = new byte[length];
                                await cow.ReadAsync(offset, got);
                                DeviceContents.AssertEqual(expected, got, $"{where}: untouched {offset}+{length}");
                                Interlocked.Increment(ref exactReads);
                            }));
                            break;
                    }
                }
                byte[] after = (byte[])model.Clone();
                for (int reader = 0; reader < 4; reader++)
                {
                    int offset = random.Next(size);
                    int length = 1 + random.Next(Math.Min(size - offset, 3 * clusterSize));
                    tasks.Add(Task.Run(async () =>
                    {
                        byte[] got = new byte[length];
                        await cow.ReadAsync(offset, got);
                        for (int i = 0; i < length; i++)
                        {
                            byte b = got[i];
                            if (b != before[offset + i] && b != after[offset + i])
                            {
                                Assert.Fail($"{where}: byte {offset + i} read 0x{b:x2} while changing from 0x{before[offset + i]:x2} to 0x{after[offset + i]:x2}");
                            }
                        }
                        Interlocked.Increment(ref racingReads);
                    }));
                }
                await Task.WhenAll(tasks);

                await CopyOnWriteDeviceTests.AssertHoldsAsync(cow, model, $"after {where}");
                await AssertZeroExtentsReadAsZeroAsync(cow, model, where);
            }
            Assert.Equal(0, cow.LockedRequests);
        }

        Assert.Empty(recorder.CallsOtherThan("read", "extents"));
        await CopyOnWriteDeviceTests.AssertHoldsAsync(memory, original, "the base");
        // The storm did what it says: plenty of copy-ups and reads while requests were in flight.
        int rounds = Generations * RoundsPerGeneration;
        Assert.True(copyUps > rounds / 4 && exactReads > rounds && racingReads == 4 * rounds, $"copy-ups {copyUps}, exact reads {exactReads}, racing reads {racingReads}");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ManyWritersIntoOneBaseCluster_NoneIsLost()
    {
        // 64 writers, each owning 64 bytes of one 4 KiB cluster that starts out in the base: every one of them
        // would copy the cluster up, so without serialisation most of their bytes would be overwritten.
        const int Cluster = 4096, Writers = 64, Piece = Cluster / Writers;
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var memory = new MemoryDevice(4 * Cluster);
            byte[] model = await DeviceContents.FillRandomAsync(memory, seed: attempt);
            using var temp = new TempDirectory();
            await using var cow = new CopyOnWriteDevice(new RecordingDevice(memory, yieldOnRead: true), temp.FullPath, clusterSize: Cluster);
            var tasks = new Task[Writers];
            for (int w = 0; w < Writers; w++)
            {
                byte[] data = new byte[Piece];
                Array.Fill(data, (byte)(w + 1));
                int offset = Cluster + w * Piece;
                data.CopyTo(model, offset);
                tasks[w] = Task.Run(async () => await cow.WriteAsync(offset, data, WriteFlags.None));
            }
            await Task.WhenAll(tasks);
            await CopyOnWriteDeviceTests.AssertHoldsAsync(cow, model, $"attempt {attempt}");
            Assert.Equal(ClusterState.Overlay, cow.StateOf(1));
            Assert.Equal(ClusterState.Base, cow.StateOf(0));
        }
    }

    /// <summary>Every extent the device calls zero must read as zeroes in the model.</summary>
    private static async Task AssertZeroExtentsReadAsZeroAsync(IBlockDevice device, byte[] model, string round)
    {
        BlockExtent[] extents = new BlockExtent[64];
        long offset = 0;
        while (offset < device.Size)
        {
            int count = await device.GetExtentsAsync(offset, device.Size - offset, extents);
            Assert.True(count > 0, $"{round}: no extents at {offset}");
            foreach (BlockExtent extent in extents.AsSpan(0, count))
            {
                Assert.True(extent.Length > 0 && offset + extent.Length <= device.Size, $"{round}: bad extent {extent} at {offset}");
                if ((extent.State & ExtentState.Zero) != 0)
                {
                    Assert.True(model.AsSpan((int)offset, (int)extent.Length).IndexOfAnyExcept((byte)0) < 0,
                        $"{round}: extent {extent} at {offset} is reported zero but holds data");
                }
                offset += extent.Length;
            }
        }
    }
}
