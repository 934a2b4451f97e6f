using NbdFast.Devices;

namespace NbdFast.Tests.Transmission;

/// <summary>
/// A RAM disk with chosen capabilities whose reads (all of them, or only those at <paramref name="gatedOffset"/>)
/// wait until <see cref="Open"/> is called, so tests can hold requests in flight.
/// </summary>
internal sealed class GatedDevice(long size, BlockDeviceCapabilities capabilities = BlockDeviceCapabilities.Flush, long? gatedOffset = null) : IBlockDevice
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _gatedReads;

    public MemoryDevice Inner { get; } = new(size);

    /// <summary>Gated reads that have reached the device (waiting at the gate or through it).</summary>
    public int ReadsStarted => Volatile.Read(ref _gatedReads);

    public long Size => Inner.Size;
    public BlockDeviceCapabilities Capabilities => capabilities;
    public BlockSizeConstraints BlockSize => Inner.BlockSize;

    public void Open() => _gate.TrySetResult();

    public async Task WaitForReadsAsync(int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (ReadsStarted < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (gatedOffset is null || gatedOffset == offset)
        {
            Interlocked.Increment(ref _gatedReads);
            await _gate.Task.WaitAsync(cancellationToken);
        }
        await Inner.ReadAsync(offset, destination, cancellationToken);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default) =>
        Inner.WriteAsync(offset, source, flags, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default) =>
        Inner.TrimAsync(offset, length, flags, cancellationToken);

    public ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default) =>
        Inner.WriteZeroesAsync(offset, length, flags, cancellationToken);

    public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default) =>
        Inner.GetExtentsAsync(offset, length, extents, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
