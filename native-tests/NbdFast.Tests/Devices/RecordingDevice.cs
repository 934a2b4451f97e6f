using System.Collections.Concurrent;
using NbdFast.Devices;

namespace NbdFast.Tests.Devices;

/// <summary>One call a <see cref="RecordingDevice"/> saw.</summary>
public readonly record struct DeviceCall(string Operation, long Offset, long Length);

/// <summary>
/// Passes every call through to a real device and records it, so a test can prove which byte ranges a wrapper
/// touched. Optionally overrides the block size constraints (to test alignment rules), advertises extra
/// capabilities, and yields before reads (so copy-up races other requests on every read of the base).
/// </summary>
public sealed class RecordingDevice(IBlockDevice inner, BlockSizeConstraints? blockSize = null, bool yieldOnRead = false) : IBlockDevice
{
    private readonly ConcurrentQueue<DeviceCall> _calls = new();

    /// <summary>Every call so far, in order of arrival.</summary>
    public IReadOnlyList<DeviceCall> Calls => [.. _calls];

    /// <summary>Calls other than the given read-side operations.</summary>
    public IReadOnlyList<DeviceCall> CallsOtherThan(params string[] operations) => [.. _calls.Where(c => !operations.Contains(c.Operation))];

    /// <summary>Set once disposed.</summary>
    public bool Disposed { get; private set; }

    /// <inheritdoc />
    public long Size => inner.Size;

    /// <inheritdoc />
    public BlockDeviceCapabilities Capabilities => inner.Capabilities;

    /// <inheritdoc />
    public BlockSizeConstraints BlockSize => blockSize ?? inner.BlockSize;

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("read", offset, destination.Length));
        if (yieldOnRead)
        {
            await Task.Yield();
        }
        await inner.ReadAsync(offset, destination, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("write", offset, source.Length));
        return inner.WriteAsync(offset, source, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("flush", 0, 0));
        return inner.FlushAsync(cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("trim", offset, length));
        return inner.TrimAsync(offset, length, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("zero", offset, length));
        return inner.WriteZeroesAsync(offset, length, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("cache", offset, length));
        return inner.CacheAsync(offset, length, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        _calls.Enqueue(new DeviceCall("extents", offset, length));
        return inner.GetExtentsAsync(offset, length, extents, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return inner.DisposeAsync();
    }
}
