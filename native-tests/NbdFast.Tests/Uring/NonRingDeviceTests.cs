using NbdFast.Devices;

namespace NbdFast.Tests.Uring;

/// <summary>
/// A host's own <see cref="IBlockDevice"/>, which completes on other threads, still works behind the io_uring
/// transport: its completions come back to the reactor through the queue.
/// </summary>
public sealed class NonRingDeviceTests
{
    /// <summary>A device that completes every operation later, on the thread pool.</summary>
    private sealed class SlowDevice(long size) : IBlockDevice
    {
        private readonly MemoryDevice _inner = new(size);

        public long Size => _inner.Size;
        public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.Flush;
        public BlockSizeConstraints BlockSize => BlockSizeConstraints.Default;
        public int Operations;

        public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            Interlocked.Increment(ref Operations);
            await _inner.ReadAsync(offset, destination, cancellationToken);
        }

        public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
        {
            await Task.Delay(1, cancellationToken);
            Interlocked.Increment(ref Operations);
            await _inner.WriteAsync(offset, source, flags, cancellationToken);
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken = default) => await Task.Yield();

        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }

    [Fact]
    public async Task AsynchronousHostDeviceServesPipelinedRequests()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        await using var device = new SlowDevice(16L << 20);
        await using (var host = new UringServerHost(engine, device))
        {
            await using MiniClient client = await MiniClient.ConnectAsync(host.EndPoint);
            for (int i = 0; i < 10; i++)
            {
                await client.RunBatchAsync(32, 8192, device.Size);
            }
        }
        Assert.Equal(320, device.Operations);
    }
}
