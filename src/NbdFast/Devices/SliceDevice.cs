using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>
/// A window onto part of another device (a partition, say), as nbdkit's offset filter or qemu-nbd --offset
/// serve: byte 0 of the slice is byte <see cref="Offset"/> of the inner device. Every operation and capability
/// passes through, shifted; every range is checked against the slice first, so nothing outside it is ever
/// read, written, trimmed, zeroed or reported, whoever the caller is.
/// </summary>
public sealed class SliceDevice : IBlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly bool _ownsInner;
    private int _disposed;

    /// <summary>Creates a slice of <paramref name="inner"/>.</summary>
    /// <param name="inner">The device to slice. Its size must not change while the slice exists.</param>
    /// <param name="offset">Where the slice starts on <paramref name="inner"/>, in bytes: from 0 to its size,
    /// and a multiple of its minimum block size.</param>
    /// <param name="length">The slice's size in bytes; null for everything from <paramref name="offset"/> to the end.
    /// A slice that ends before the inner device's end must also be a multiple of the minimum block size.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> together with the slice.</param>
    /// <exception cref="ArgumentNullException"><paramref name="inner"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The offset or the length is negative, reaches past the end of
    /// <paramref name="inner"/>, or is not aligned to its minimum block size.</exception>
    public SliceDevice(IBlockDevice inner, long offset, long? length = null, bool ownsInner = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        long innerSize = inner.Size;
        uint minimum = Math.Max(1u, inner.BlockSize.Minimum);
        if (offset < 0 || offset > innerSize)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset,
                $"The slice offset must be from 0 to the device size ({innerSize} bytes).");
        }
        if (offset % minimum != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset,
                $"The slice offset must be a multiple of the device's minimum block size ({minimum} bytes).");
        }
        long available = innerSize - offset;
        long size = length ?? available;
        if (size < 0 || size > available)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"The slice length must be from 0 to {available} bytes: the device is {innerSize} bytes and the slice starts at {offset}.");
        }
        if (size != available && size % minimum != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"The slice length must be a multiple of the device's minimum block size ({minimum} bytes).");
        }
        _inner = inner;
        _ownsInner = ownsInner;
        Offset = offset;
        Size = size;
        Capabilities = inner.Capabilities;
        BlockSize = inner.BlockSize;
    }

    /// <summary>Where the slice starts on the inner device, in bytes.</summary>
    public long Offset { get; }

    /// <summary>The device the slice is cut from.</summary>
    public IBlockDevice Inner => _inner;

    /// <inheritdoc />
    public long Size { get; }

    /// <summary>The inner device's capabilities, unchanged.</summary>
    public BlockDeviceCapabilities Capabilities { get; }

    /// <summary>The inner device's constraints, unchanged (the offset is aligned to its minimum).</summary>
    public BlockSizeConstraints BlockSize { get; }

    /// <inheritdoc />
    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, destination.Length);
        return _inner.ReadAsync(Offset + offset, destination, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, source.Length);
        return _inner.WriteAsync(Offset + offset, source, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _inner.FlushAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        return _inner.TrimAsync(Offset + offset, length, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        return _inner.WriteZeroesAsync(Offset + offset, length, flags, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        return _inner.CacheAsync(Offset + offset, length, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        int count = await _inner.GetExtentsAsync(Offset + offset, length, extents, cancellationToken).ConfigureAwait(false);
        return ClipToLength(extents.Span[..Math.Min(count, extents.Length)], length);
    }

    /// <summary>Disposes the inner device when the slice owns it.</summary>
    public ValueTask DisposeAsync() =>
        _ownsInner && Interlocked.Exchange(ref _disposed, 1) == 0 ? _inner.DisposeAsync() : ValueTask.CompletedTask;

    /// <summary>
    /// Drops empty extents and cuts the list where it reaches <paramref name="length"/>, so an inner device
    /// that answers past the request cannot describe bytes beyond the slice. Returns how many remain.
    /// </summary>
    internal static int ClipToLength(Span<BlockExtent> extents, long length)
    {
        int kept = 0;
        long covered = 0;
        foreach (BlockExtent extent in extents)
        {
            if (covered >= length)
            {
                break;
            }
            if (extent.Length <= 0)
            {
                continue;
            }
            extents[kept++] = extent with { Length = Math.Min(extent.Length, length - covered) };
            covered += extents[kept - 1].Length;
        }
        return kept;
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(NbdError.Invalid, "range outside the slice");
        }
    }
}
