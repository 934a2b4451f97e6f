namespace NbdFast.Devices;

/// <summary>Block status of a snapshot: the overlay's clusters from the map, everything else from the base.</summary>
public sealed partial class CopyOnWriteDevice
{
    /// <inheritdoc />
    public async ValueTask<int> GetExtentsAsync(long offset, long length, Memory<BlockExtent> extents, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        ArgumentOutOfRangeException.ThrowIfZero(extents.Length, nameof(extents));
        if (length == 0)
        {
            return 0;
        }
        long end = offset + length;
        int written = 0;
        while (offset < end)
        {
            ClusterState state = _map.Get(offset >> _clusterShift);
            long runEnd = RunEnd(offset, end);
            bool fromBase = state == ClusterState.Base && _baseHasExtents;
            if (written == extents.Length && (fromBase || extents.Span[written - 1].State != ExtentOf(state)))
            {
                break; // full, and the next run would not merge into the last extent
            }
            if (!fromBase)
            {
                Append(extents.Span, ref written, runEnd - offset, ExtentOf(state));
                offset = runEnd;
                continue;
            }
            // The base writes its extents into our free tail; they are then clipped to the run and merged in place.
            int baseStart = written;
            int count = await _base.GetExtentsAsync(offset, runEnd - offset, extents[baseStart..], cancellationToken).ConfigureAwait(false);
            count = Math.Min(count, extents.Length - baseStart);
            long covered = MergeBaseExtents(extents.Span, ref written, baseStart, count, runEnd - offset);
            if (covered == 0)
            {
                break; // the base described nothing; what we have is a valid (shorter) answer, if anything
            }
            offset += covered;
        }
        if (written == 0)
        {
            // Only when the base reported nothing for the very first run.
            throw new BlockDeviceException(Protocol.NbdError.IO, "the base device reported no extents");
        }
        return written;
    }

    private static ExtentState ExtentOf(ClusterState state) => state switch
    {
        ClusterState.ZeroHole => ExtentState.Hole | ExtentState.Zero,
        ClusterState.ZeroAllocated => ExtentState.Zero,
        _ => ExtentState.Data,
    };

    /// <summary>
    /// Merges <paramref name="count"/> extents the base left at <paramref name="baseStart"/> into the output
    /// (which ends at <paramref name="written"/> &lt;= <paramref name="baseStart"/>), clipped to <paramref name="limit"/>
    /// bytes. Returns how many bytes they covered.
    /// </summary>
    private static long MergeBaseExtents(Span<BlockExtent> output, ref int written, int baseStart, int count, long limit)
    {
        long covered = 0;
        // Appending never writes past the element being read, so compacting in place is safe.
        for (int i = 0; i < count && covered < limit; i++)
        {
            BlockExtent extent = output[baseStart + i];
            long piece = Math.Min(extent.Length, limit - covered);
            if (piece <= 0)
            {
                continue;
            }
            Append(output, ref written, piece, extent.State);
            covered += piece;
        }
        return covered;
    }

    private static void Append(Span<BlockExtent> output, ref int written, long length, ExtentState state)
    {
        if (written > 0 && output[written - 1].State == state)
        {
            output[written - 1] = output[written - 1] with { Length = output[written - 1].Length + length };
        }
        else
        {
            output[written++] = new BlockExtent(length, state);
        }
    }
}
