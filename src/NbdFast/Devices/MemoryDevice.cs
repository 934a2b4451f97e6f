using NbdFast.Buffers;
using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>
/// A sparse RAM disk. Memory is committed in 64 KiB pinned chunks on first write, so a large device costs
/// nothing until written, unwritten ranges report as holes, and trimmed or zeroed chunks are released.
/// Chunks are pinned so transports can hand their memory to the kernel without copying, and their bytes start
/// on a cache line (<see cref="AlignedPinnedChunk"/>): writes copy into them twice as fast.
/// </summary>
public sealed class MemoryDevice : IBlockDevice
{
    internal const int ChunkShift = 16;
    internal const int ChunkSize = 1 << ChunkShift;

    private readonly byte[]?[] _chunks;

    /// <summary>Creates a RAM disk of <paramref name="size"/> bytes, initially all zeroes.</summary>
    /// <param name="size">Size in bytes.</param>
    /// <param name="maxPayload">Largest READ/WRITE payload advertised and accepted (default 32 MiB).</param>
    public MemoryDevice(long size, uint maxPayload = NbdLimits.DefaultMaxPayload)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayload, 4096u);
        BlockSize = BlockSizeConstraints.Default with { MaximumPayload = maxPayload };
        long chunkCount = (size + ChunkSize - 1) >> ChunkShift;
        if (chunkCount > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "The memory device is too large.");
        }
        Size = size;
        _chunks = new byte[chunkCount][];
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

    /// <summary>Bytes of memory committed to written chunks.</summary>
    public long CommittedBytes
    {
        get
        {
            long total = 0;
            foreach (byte[]? chunk in _chunks)
            {
                total += chunk is null ? 0 : ChunkSize;
            }
            return total;
        }
    }

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
        while (!destination.IsEmpty)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = Math.Min(destination.Length, ChunkSize - within);
            byte[]? chunk = Volatile.Read(ref _chunks[index]);
            if (chunk is null)
            {
                destination[..count].Clear();
            }
            else
            {
                AlignedPinnedChunk.Bytes(chunk, within, count).CopyTo(destination);
                GC.KeepAlive(chunk);
            }
            destination = destination[count..];
            offset += count;
        }
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
        CheckRange(offset, source.Length);
        while (!source.IsEmpty)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = Math.Min(source.Length, ChunkSize - within);
            byte[] chunk = GetOrCommitChunk(index);
            source[..count].CopyTo(AlignedPinnedChunk.Bytes(chunk, within, count));
            GC.KeepAlive(chunk);
            source = source[count..];
            offset += count;
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
            int index = (int)(offset >> ChunkShift);
            bool isHole = Volatile.Read(ref _chunks[index]) is null;
            long runEnd = Math.Min(Size, ((long)index + 1) << ChunkShift);
            while (runEnd < end && (Volatile.Read(ref _chunks[(int)(runEnd >> ChunkShift)]) is null) == isHole)
            {
                runEnd = Math.Min(Size, runEnd + ChunkSize);
            }
            output[written++] = new BlockExtent(Math.Min(runEnd, end) - offset, isHole ? ExtentState.Hole | ExtentState.Zero : ExtentState.Data);
            offset = runEnd;
        }
        return ValueTask.FromResult(written);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// The chunk holding byte <paramref name="offset"/>, or null while that chunk has never been written; its
    /// <see cref="ChunkSize"/> bytes are at <see cref="AlignedPinnedChunk.Pointer"/>, not at index 0.
    /// Transports send replies straight from these pinned arrays; they must hold a reference to each chunk
    /// they point the kernel at until the send completes (a trim may drop the device's own reference).
    /// </summary>
    internal byte[]? ChunkAt(long offset) => Volatile.Read(ref _chunks[(int)(offset >> ChunkShift)]);

    private void Zero(long offset, long length, bool release)
    {
        CheckRange(offset, length);
        long end = offset + length;
        while (offset < end)
        {
            int index = (int)(offset >> ChunkShift);
            int within = (int)(offset & (ChunkSize - 1));
            int count = (int)Math.Min(end - offset, ChunkSize - within);
            if (release && within == 0 && (count == ChunkSize || offset + count == Size))
            {
                Volatile.Write(ref _chunks[index], null);
            }
            else
            {
                byte[]? chunk = Volatile.Read(ref _chunks[index]);
                if (chunk is not null)
                {
                    AlignedPinnedChunk.Bytes(chunk, within, count).Clear();
                    GC.KeepAlive(chunk);
                }
            }
            offset += count;
        }
    }

    private byte[] GetOrCommitChunk(int index)
    {
        byte[]? chunk = Volatile.Read(ref _chunks[index]);
        if (chunk is not null)
        {
            return chunk;
        }
        byte[] fresh = AlignedPinnedChunk.Allocate(ChunkSize);
        return Interlocked.CompareExchange(ref _chunks[index], fresh, null) ?? fresh;
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(NbdError.Invalid, "range outside the device");
        }
    }
}
