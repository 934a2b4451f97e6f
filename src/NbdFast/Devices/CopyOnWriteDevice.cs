using System.Numerics;
using NbdFast.Protocol;

namespace NbdFast.Devices;

/// <summary>
/// A writable snapshot of another device (qemu-nbd -s, nbd-server copyonwrite, nbdkit's cow filter): writes,
/// trims and zeroes land in a private overlay and the base device is only ever read. The overlay is a sparse
/// nameless temporary file plus an in-memory map of which clusters it holds; everything written is gone once
/// the device is disposed (or the process dies, however it dies).
/// </summary>
/// <remarks>
/// <para>A write that covers part of a cluster the overlay does not hold yet first copies the rest of that
/// cluster from the base (copy-up). Write-type requests that may change a cluster's state take an
/// asynchronous lock on the clusters they touch, first come first served, so concurrent writes into one
/// cluster never copy it up twice or lose each other's bytes; writes into clusters already in the overlay,
/// and all reads, take no lock. A cluster is marked as held by the overlay only after its complete contents
/// are there, so a read racing a copy-up sees either the base or the finished cluster, never a half-built one.</para>
/// <para>One instance may serve many connections: they all see the one overlay, and a flush on any of them
/// covers writes completed on all (multi-conn). Flush and FUA fdatasync the overlay, as qemu-nbd -s does,
/// although nothing in it survives the process.</para>
/// </remarks>
public sealed partial class CopyOnWriteDevice : IBlockDevice
{
    /// <summary>The default cluster size: 64 KiB, as qcow2 and nbdkit's cow filter use.</summary>
    public const int DefaultClusterSize = 64 * 1024;

    /// <summary>The smallest cluster size accepted.</summary>
    public const int MinimumClusterSize = 512;

    /// <summary>The largest cluster size accepted (qcow2's largest).</summary>
    public const int MaximumClusterSize = 2 * 1024 * 1024;

    private readonly IBlockDevice _base;
    private readonly bool _ownsBase;
    private readonly OverlayFile _overlay;
    private readonly ClusterStateMap _map;
    private readonly ClusterRangeLock _locks = new();
    private readonly int _clusterShift;
    private readonly bool _baseHasExtents;
    private readonly bool _baseCaches;
    private int _disposed;

    /// <summary>Creates a snapshot of <paramref name="baseDevice"/> whose writes go to a temporary overlay.</summary>
    /// <param name="baseDevice">The device to protect; only its reads (and block status and cache, when it has them) are called.
    /// It may be read-only. Its size must not change while the snapshot exists.</param>
    /// <param name="overlayDirectory">Where the overlay file is created (nameless, so nothing appears there);
    /// <see cref="Path.GetTempPath"/> when null. It must have room for everything written.</param>
    /// <param name="ownsBase">Dispose <paramref name="baseDevice"/> together with this device.</param>
    /// <param name="clusterSize">The copy-up unit in bytes: a power of two from 512 B to 2 MiB, at least the base's minimum block size.</param>
    /// <exception cref="ArgumentNullException"><paramref name="baseDevice"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="clusterSize"/> is out of range, not a power of two, or below the base's minimum block size.</exception>
    /// <exception cref="DirectoryNotFoundException"><paramref name="overlayDirectory"/> does not exist.</exception>
    /// <exception cref="IOException">The overlay file could not be created.</exception>
    public CopyOnWriteDevice(IBlockDevice baseDevice, string? overlayDirectory = null, bool ownsBase = false, int clusterSize = DefaultClusterSize)
    {
        ArgumentNullException.ThrowIfNull(baseDevice);
        if (clusterSize is < MinimumClusterSize or > MaximumClusterSize || !BitOperations.IsPow2(clusterSize))
        {
            throw new ArgumentOutOfRangeException(nameof(clusterSize), clusterSize,
                $"The cluster size must be a power of two from {MinimumClusterSize} to {MaximumClusterSize} bytes.");
        }
        if ((uint)clusterSize < baseDevice.BlockSize.Minimum)
        {
            throw new ArgumentOutOfRangeException(nameof(clusterSize), clusterSize,
                $"The cluster size must be at least the base device's minimum block size ({baseDevice.BlockSize.Minimum} bytes).");
        }
        _base = baseDevice;
        _ownsBase = ownsBase;
        _clusterShift = BitOperations.Log2((uint)clusterSize);
        ClusterSize = clusterSize;
        Size = baseDevice.Size;
        _map = new ClusterStateMap((Size + clusterSize - 1) >> _clusterShift);
        BlockDeviceCapabilities baseCaps = baseDevice.Capabilities;
        _baseHasExtents = (baseCaps & BlockDeviceCapabilities.BlockStatus) != 0;
        _baseCaches = (baseCaps & BlockDeviceCapabilities.Cache) != 0;
        // Zeroing only flips cluster states (plus at most two partial clusters), so FAST_ZERO is honest.
        Capabilities = BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.Fua | BlockDeviceCapabilities.Trim |
            BlockDeviceCapabilities.WriteZeroes | BlockDeviceCapabilities.FastZero | BlockDeviceCapabilities.BlockStatus |
            BlockDeviceCapabilities.MultiConn | (baseCaps & (BlockDeviceCapabilities.Cache | BlockDeviceCapabilities.Rotational));
        BlockSize = baseDevice.BlockSize;
        _overlay = OverlayFile.Create(overlayDirectory ?? Path.GetTempPath(), Size);
    }

    /// <inheritdoc />
    public long Size { get; }

    /// <inheritdoc />
    public BlockDeviceCapabilities Capabilities { get; }

    /// <inheritdoc />
    public BlockSizeConstraints BlockSize { get; }

    /// <summary>The copy-up unit in bytes.</summary>
    public int ClusterSize { get; }

    /// <summary>The device this snapshot reads through to.</summary>
    public IBlockDevice BaseDevice => _base;

    /// <summary>Bytes of clusters whose data lives in the overlay (zeroed clusters are not counted).</summary>
    public long OverlayBytes => _map.Count(ClusterState.Overlay) << _clusterShift;

    /// <summary>Where the bytes of cluster <paramref name="cluster"/> currently come from.</summary>
    internal ClusterState StateOf(long cluster) => _map.Get(cluster);

    /// <summary>The overlay file, for tests.</summary>
    internal OverlayFile Overlay => _overlay;

    /// <summary>Lock queue length, for tests (zero when no write-type request is in flight).</summary>
    internal int LockedRequests => _locks.Count;

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, destination.Length);
        long end = offset + destination.Length;
        while (offset < end)
        {
            ClusterState state = _map.Get(offset >> _clusterShift);
            long runEnd = Math.Min(end, RunEnd(offset, end));
            Memory<byte> piece = destination[..(int)(runEnd - offset)];
            switch (state)
            {
                case ClusterState.Base:
                    await _base.ReadAsync(offset, piece, cancellationToken).ConfigureAwait(false);
                    break;
                case ClusterState.Overlay:
                    await _overlay.ReadAsync(offset, piece).ConfigureAwait(false);
                    break;
                default:
                    piece.Span.Clear();
                    break;
            }
            destination = destination[piece.Length..];
            offset = runEnd;
        }
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, source.Length);
        if (!source.IsEmpty)
        {
            await ModifyAsync(offset, source.Length, source, ClusterState.Overlay, cancellationToken).ConfigureAwait(false);
        }
        await SyncIfFuaAsync(flags).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => new(_overlay.SyncAsync());

    /// <summary>Makes the range read as zeroes, exactly (a trim here is never ignored, so the base cannot show through).</summary>
    public async ValueTask TrimAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        if (length > 0)
        {
            await ModifyAsync(offset, length, default, ClusterState.ZeroHole, cancellationToken).ConfigureAwait(false);
        }
        await SyncIfFuaAsync(flags).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask WriteZeroesAsync(long offset, long length, WriteFlags flags, CancellationToken cancellationToken = default)
    {
        // FAST_ZERO is always met: whole clusters only change state, and at most two partial ones are written.
        CheckRange(offset, length);
        if (length > 0)
        {
            ClusterState zero = (flags & WriteFlags.NoHole) != 0 ? ClusterState.ZeroAllocated : ClusterState.ZeroHole;
            await ModifyAsync(offset, length, default, zero, cancellationToken).ConfigureAwait(false);
        }
        await SyncIfFuaAsync(flags).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask CacheAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        return _baseCaches && length > 0 ? _base.CacheAsync(offset, length, cancellationToken) : ValueTask.CompletedTask;
    }

    /// <summary>
    /// Forgets every write: the device reads as its base again and the overlay's space is given back. For a
    /// snapshot whose last client has left; the caller guarantees no request is in flight.
    /// </summary>
    public void Discard()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_map.ClusterCount > 0)
        {
            _map.SetRange(0, _map.ClusterCount - 1, ClusterState.Base);
        }
        _overlay.ReleaseAll();
    }

    /// <summary>Closes the overlay, which gives its space back, and disposes the base when this device owns it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _overlay.Dispose();
        if (_ownsBase)
        {
            await _base.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>End of the run of clusters in the same state as the one holding <paramref name="offset"/>, capped at <paramref name="limit"/>.</summary>
    private long RunEnd(long offset, long limit)
    {
        long first = offset >> _clusterShift;
        long lastCluster = (limit - 1) >> _clusterShift;
        long endCluster = _map.EndOfRun(first, lastCluster + 1);
        return Math.Min(limit, endCluster << _clusterShift);
    }

    private ValueTask SyncIfFuaAsync(WriteFlags flags) =>
        (flags & WriteFlags.Fua) != 0 ? new ValueTask(_overlay.SyncAsync()) : ValueTask.CompletedTask;

    private void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new BlockDeviceException(NbdError.Invalid, "range outside the device");
        }
    }
}
