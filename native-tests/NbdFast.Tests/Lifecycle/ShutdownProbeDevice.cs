using NbdFast.Devices;

namespace NbdFast.Tests.Lifecycle;

/// <summary>
/// A RAM disk whose writes wait at a gate until <see cref="Open"/>, so a test can hold many of them in flight,
/// and which records what the final flush covered.
/// </summary>
internal sealed class ShutdownProbeDevice(long size) : IBlockDevice
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _writesStarted;
    private int _writesDone;
    private int _flushes;
    private int _writesDoneAtLastFlush = -1;

    public MemoryDevice Inner { get; } = new(size);

    /// <summary>Writes that reached the device (waiting at the gate or through it).</summary>
    public int WritesStarted => Volatile.Read(ref _writesStarted);

    public int WritesDone => Volatile.Read(ref _writesDone);

    public int Flushes => Volatile.Read(ref _flushes);

    /// <summary>Completed writes when the last flush began (-1 before any flush), provided none was still running.</summary>
    public int WritesDoneAtLastFlush => Volatile.Read(ref _writesDoneAtLastFlush);

    public long Size => Inner.Size;
    public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.Flush;
    public BlockSizeConstraints BlockSize => Inner.BlockSize;

    public void Open() => _gate.TrySetResult();

    public async Task WaitForWritesAsync(int count)
    {
        using var cts = new CancellationTokenSource(LifecycleHost.Patience);
        while (WritesStarted < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        Inner.ReadAsync(offset, destination, cancellationToken);

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _writesStarted);
        await _gate.Task.WaitAsync(cancellationToken);
        await Inner.WriteAsync(offset, source, flags, cancellationToken);
        Interlocked.Increment(ref _writesDone);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _flushes);
        int done = WritesDone;
        Volatile.Write(ref _writesDoneAtLastFlush, done == WritesStarted ? done : -2);
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
