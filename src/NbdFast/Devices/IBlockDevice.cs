namespace NbdFast.Devices;

/// <summary>
/// A block device that NbdFast can export. Implementations must be safe for concurrent calls: the
/// transmission layer pipelines many requests at once. Offsets and lengths passed in are already checked
/// against <see cref="Size"/>. Optional operations are only called when <see cref="Capabilities"/> says so.
/// Errors are reported by throwing <see cref="BlockDeviceException"/> (or an <see cref="IOException"/>,
/// mapped to EIO/ENOSPC); they fail only the request that hit them.
/// </summary>
public interface IBlockDevice : IAsyncDisposable
{
    /// <summary>Size of the device in bytes.</summary>
    long Size { get; }

    /// <summary>What the device supports beyond read and write.</summary>
    BlockDeviceCapabilities Capabilities { get; }

    /// <summary>Block size constraints advertised with NBD_INFO_BLOCK_SIZE.</summary>
    BlockSizeConstraints BlockSize { get; }

    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="offset"/>.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>Writes <paramref name="source"/> at <paramref name="offset"/>; with <see cref="WriteFlags.Fua"/> it is durable before returning.</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default);

    /// <summary>Makes every write that completed before this call durable.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Discards a range (advisory); only called with <see cref="BlockDeviceCapabilities.Trim"/>.</summary>
    ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
        => throw new BlockDeviceException(Protocol.NbdError.NotSupported, "trim is not supported");

    /// <summary>
    /// Makes a range read as zeroes; only called with <see cref="BlockDeviceCapabilities.WriteZeroes"/>.
    /// With <see cref="WriteFlags.FastZero"/> it must fail with ENOTSUP, leaving data untouched, unless zeroing is fast.
    /// With <see cref="WriteFlags.NoHole"/> it must not deallocate.
    /// </summary>
    ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
        => throw new BlockDeviceException(Protocol.NbdError.NotSupported, "write zeroes is not supported");

    /// <summary>Prefetches a range into the cache; only called with <see cref="BlockDeviceCapabilities.Cache"/>.</summary>
    ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>
    /// Describes allocation from <paramref name="offset"/> on: fills <paramref name="extents"/> with at least one
    /// extent (each longer than zero) and returns how many it wrote. Only called with
    /// <see cref="BlockDeviceCapabilities.BlockStatus"/>; the default reports one allocated extent.
    /// </summary>
    ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        extents.Span[0] = new BlockExtent(length, ExtentState.Data);
        return ValueTask.FromResult(1);
    }
}
