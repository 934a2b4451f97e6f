using NbdFast.Devices;

namespace NbdFast.Tests.Uring;

/// <summary>
/// The io_uring data path allocates nothing per request: the reactor thread's managed allocation counter
/// stays flat across thousands of pipelined reads and writes once the pools are warm.
/// </summary>
public sealed class ReactorAllocationTests
{
    private const int WarmUpBatches = 40;
    private const int MeasuredBatches = 400;
    private const int BatchSize = 32;

    [Fact]
    public async Task MemoryExportServesRequestsWithoutAllocating()
    {
        await using var device = new MemoryDevice(64L << 20);
        await AssertFlatAllocationsAsync(device);
    }

    [Fact]
    public async Task FileExportServesRequestsWithoutAllocating()
    {
        string path = Path.Combine(Path.GetTempPath(), $"nbdfast-alloc-{Guid.NewGuid():N}.img");
        await File.WriteAllBytesAsync(path, new byte[64 << 20]);
        try
        {
            await using FileDevice device = FileDevice.Open(path);
            await AssertFlatAllocationsAsync(device);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task AssertFlatAllocationsAsync(IBlockDevice device)
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        await using var host = new UringServerHost(engine, device);
        await using MiniClient client = await MiniClient.ConnectAsync(host.EndPoint);

        for (int i = 0; i < WarmUpBatches; i++)
        {
            await client.RunBatchAsync(BatchSize, 4096, device.Size);
        }
        long before = (await engine.MeasureReactorAllocationsAsync())[0];
        for (int i = 0; i < MeasuredBatches; i++)
        {
            await client.RunBatchAsync(BatchSize, 4096, device.Size);
        }
        long after = (await engine.MeasureReactorAllocationsAsync())[0];

        int requests = MeasuredBatches * BatchSize;
        // Even one small object per request would be hundreds of kilobytes here.
        Assert.True(after - before < 1024, $"the reactor allocated {after - before} bytes over {requests} requests");
    }
}
