using System.Buffers;

namespace NbdFast.Devices;

/// <summary>Writes, trims and zeroes: copy-up of partial clusters and cluster state changes, under the cluster lock.</summary>
public sealed partial class CopyOnWriteDevice
{
    /// <summary>
    /// Applies a write (<paramref name="target"/> = <see cref="ClusterState.Overlay"/>, bytes from
    /// <paramref name="data"/>) or a zeroing (<paramref name="target"/> = a zero state, <paramref name="data"/> unused).
    /// </summary>
    private async ValueTask ModifyAsync(long offset, long length, ReadOnlyMemory<byte> data, ClusterState target, CancellationToken cancellationToken)
    {
        long first = offset >> _clusterShift;
        long last = (offset + length - 1) >> _clusterShift;
        // Clusters already in the overlay never leave it except by a whole-cluster zeroing, which overlaps this
        // write; so a plain write there needs no lock (NBD leaves the outcome of overlapping requests open).
        if (target == ClusterState.Overlay && _map.All(first, last, ClusterState.Overlay))
        {
            await _overlay.WriteAsync(offset, data).ConfigureAwait(false);
            return;
        }
        ClusterRangeLock.Entry held = await _locks.AcquireAsync(first, last).ConfigureAwait(false);
        try
        {
            await ModifyLockedAsync(offset, length, data, target, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _locks.Release(held);
        }
    }

    private async ValueTask ModifyLockedAsync(long offset, long length, ReadOnlyMemory<byte> data, ClusterState target, CancellationToken cancellationToken)
    {
        long end = offset + length;
        long position = offset;
        while (position < end)
        {
            long clusterStart = position & ~((long)ClusterSize - 1);
            long clusterEnd = Math.Min(Size, clusterStart + ClusterSize);
            if (position == clusterStart && end >= clusterEnd)
            {
                // A run of whole clusters (the device's short last cluster counts as whole when reached).
                long wholeEnd = end == Size ? Size : end & ~((long)ClusterSize - 1);
                await ReplaceWholeClustersAsync(position, wholeEnd, Slice(data, position - offset, wholeEnd - position), target).ConfigureAwait(false);
                position = wholeEnd;
            }
            else
            {
                long pieceEnd = Math.Min(end, clusterEnd);
                await ModifyPartialClusterAsync(clusterStart, clusterEnd, position, (int)(pieceEnd - position),
                    Slice(data, position - offset, pieceEnd - position), target, cancellationToken).ConfigureAwait(false);
                position = pieceEnd;
            }
        }
    }

    /// <summary>Whole clusters need no copy-up: write the data and then mark them, or mark them zero and release their space.</summary>
    private async ValueTask ReplaceWholeClustersAsync(long start, long end, ReadOnlyMemory<byte> data, ClusterState target)
    {
        long first = start >> _clusterShift;
        long last = (end - 1) >> _clusterShift;
        if (target == ClusterState.Overlay)
        {
            await _overlay.WriteAsync(start, data).ConfigureAwait(false);
            _map.SetRange(first, last, ClusterState.Overlay);
        }
        else
        {
            _map.SetRange(first, last, target);
            await _overlay.ReleaseAsync(start, end - start).ConfigureAwait(false);
        }
    }

    /// <summary>Part of one cluster: written in place if the overlay holds it, otherwise built whole and copied up.</summary>
    private async ValueTask ModifyPartialClusterAsync(long clusterStart, long clusterEnd, long start, int count, ReadOnlyMemory<byte> data,
        ClusterState target, CancellationToken cancellationToken)
    {
        bool zeroing = target != ClusterState.Overlay;
        int within = (int)(start - clusterStart);
        ClusterState state = _map.Get(clusterStart >> _clusterShift);
        if (zeroing && state is ClusterState.ZeroHole or ClusterState.ZeroAllocated)
        {
            return; // already reads as zeroes
        }

        int clusterLength = (int)(clusterEnd - clusterStart);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(clusterLength);
        try
        {
            if (state == ClusterState.Overlay)
            {
                // In place: no state change, so no copy-up.
                Memory<byte> piece = buffer.AsMemory(0, count);
                if (zeroing)
                {
                    piece.Span.Clear();
                }
                else
                {
                    data.CopyTo(piece);
                }
                await _overlay.WriteAsync(start, piece).ConfigureAwait(false);
                return;
            }

            // Copy-up: the whole cluster as it reads now, with this request's bytes laid over it.
            Memory<byte> cluster = buffer.AsMemory(0, clusterLength);
            if (state == ClusterState.Base)
            {
                await _base.ReadAsync(clusterStart, cluster, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                cluster.Span.Clear();
            }
            if (zeroing)
            {
                cluster.Span.Slice(within, count).Clear();
            }
            else
            {
                data.Span.CopyTo(cluster.Span[within..]);
            }
            await _overlay.WriteAsync(clusterStart, cluster).ConfigureAwait(false);
            // Only now, with the whole cluster in place, may readers be sent to the overlay.
            _map.Set(clusterStart >> _clusterShift, ClusterState.Overlay);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ReadOnlyMemory<byte> Slice(ReadOnlyMemory<byte> data, long start, long length) =>
        data.IsEmpty ? data : data.Slice((int)start, (int)length);
}
