using NbdFast.Buffers;
using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>
/// A sparse RAM disk. Its bytes live in one flat range of virtual memory that the system commits page by page
/// on first write (<see cref="SparseRegion"/>), so a large device costs nothing until written, and trimmed or
/// zeroed pages are handed back. A bitmap records which 64 KiB chunks were ever written: those never written (or
/// trimmed whole since) report as holes. Transports send replies straight from the device's memory.
/// </summary>
public sealed class MemoryDevice : IBlockDevice
{
    internal const int ChunkShift = 16;
    internal const int ChunkSize = 1 << ChunkShift;
    private const int CopyPiece = 64 * 1024;

    private readonly SparseRegion _region;
    private readonly WrittenChunks _written;
    private volatile bool _disposed;

    /// <summary>Creates a RAM disk of <paramref name="size"/> bytes, initially all zeroes.</summary>
    /// <param name="size">Size in bytes.</param>
    /// <param name="maxPayload">Largest READ/WRITE payload advertised and accepted (default 32 MiB).</param>
    /// <exception cref="OutOfMemoryException">The system would not reserve <paramref name="size"/> bytes of address space.</exception>
    public MemoryDevice(long size, uint maxPayload = NbdLimits.DefaultMaxPayload)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 4096u);
        BlockSize = BlockSizeConstraints.Default with { MaximumPayload = maxPayload };
        long chunkCount = (size + ChunkSize - 1) >> ChunkShift;
        if (!WrittenChunks.CanTrack(chunkCount))
        {
            throw new ArgumentOutOfRangeException(nameof(size), "The memory device is too large.");
        }
        Size = size;
        // The address space first: a size the system cannot map fails before the bitmap is allocated for it.
        _region = new SparseRegion(size);
        _written = new WrittenChunks(chunkCount);
    }

    /// <inheritdoc />
    public long Size { get; }

    /// <inheritdoc />
    public BlockDeviceCapabilities Capabilities =>
        BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
        BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.Cache |
        BlockDeviceCapabilities.BlockStatus | BlockDeviceCapabilities.MultiConn;

    /// <inheritdoc />
    public BlockSizeConstraints BlockSize { get; }

    /// <summary>Bytes in the 64 KiB chunks that hold written data (at most this much memory is committed to them).</summary>
    public long CommittedBytes => _written.Count * (long)ChunkSize;

    /// <inheritdoc />
    public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        Read(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Synchronous read, used directly by transports that know the device completes inline.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        // Never-written pages read as zeroes by themselves: the system maps its zero page there.
        _region.Bytes(offset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        Write(offset, source.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Synchronous write.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        int length = source.Length;
        CheckRange(offset, length);
        Span<byte> destination = _region.Bytes(offset, length);
        // In pieces below glibc's rep_movsb_stop_threshold (1 MiB on this AMD VM): past it memmove leaves
        // `rep movsb` for a vector loop, which copies into memory not in the cache more slowly.
        while (source.Length > CopyPiece)
        {
            source[..CopyPiece].CopyTo(destination);
            source = source[CopyPiece..];
            destination = destination[CopyPiece..];
        }
        source.CopyTo(destination);
        // Marked after the copy: a trim racing this write clears the mark before it discards the pages, so a
        // chunk whose mark is clear never holds anything but zeroes.
        if (length != 0)
        {
            _written.Mark(offset >> ChunkShift, LastChunk(offset, length));
        }
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        Zero(offset, length, release: true);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        // Zeroing memory is always fast, so FAST_ZERO never fails here.
        Zero(offset, length, release: (flags & WriteFlags.NoHole) == 0);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        Span<BlockExtent> output = extents.Span;
        int written = 0;
        long end = offset + length;
        while (offset < end && written < output.Length)
        {
            long index = offset >> ChunkShift;
            bool isHole = !_written.IsMarked(index);
            long runEnd = Math.Min(Size, (index + 1) << ChunkShift);
            while (runEnd < end && !_written.IsMarked(runEnd >> ChunkShift) == isHole)
            {
                runEnd = Math.Min(Size, runEnd + ChunkSize);
            }
            output[written++] = new BlockExtent(Math.Min(runEnd, end) - offset, isHole ? ExtentState.Hole | ExtentState.Zero : ExtentState.Data);
            offset = runEnd;
        }
        return ValueTask.FromResult(written);
    }

    /// <summary>Gives the device's memory back to the system; the device cannot be used afterwards.</summary>
    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            // The range stays mapped (a send still in flight may point into it) until the finalizer of the region.
            _region.Discard(0, Size);
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The device's memory, for transports that point the kernel straight at it. They must keep this device
    /// reachable until those sends complete; the range is unmapped only once nothing can reach it.
    /// </summary>
    internal SparseRegion Region => _region;

    /// <summary>True when some 64 KiB chunk touching the range was never written (or was trimmed whole since).</summary>
    internal bool HasHole(long offset, long length) => !_written.AllMarked(offset >> ChunkShift, LastChunk(offset, length));

    /// <summary>The last chunk a range touches; an empty range counts as touching the chunk it starts in.</summary>
    private static long LastChunk(long offset, long length) => (offset + Math.Max(length, 1) - 1) >> ChunkShift;

    private void Zero(long offset, long length, bool release)
    {
        CheckRange(offset, length);
        long end = offset + length;
        // Consecutive written chunks are discarded together: one madvise for a long trim, not one per chunk.
        long runStart = -1;
        while (offset < end)
        {
            long index = offset >> ChunkShift;
            long within = offset & (ChunkSize - 1);
            long count = Math.Min(end - offset, ChunkSize - within);
            if (_written.IsMarked(index))
            {
                bool wholeChunk = within == 0 && (count == ChunkSize || offset + count == Size);
                if (release && wholeChunk)
                {
                    // Unmarked before its pages go: see Write.
                    _written.Unmark(index);
                }
                runStart = runStart < 0 ? offset : runStart;
            }
            else if (runStart >= 0)
            {
                _region.Discard(runStart, offset - runStart);
                runStart = -1;
            }
            offset += count;
        }
        if (runStart >= 0)
        {
            _region.Discard(runStart, end - runStart);
        }
    }

    private void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(NbdError.Invalid, "range outside the device");
        }
    }
}
