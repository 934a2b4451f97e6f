using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>
/// Structured READ replies that skip holes: zero extents go out as OFFSET_HOLE chunks instead of zero bytes,
/// data extents as OFFSET_DATA. The whole reply is laid out in one buffer and sent with one write.
/// </summary>
internal sealed partial class RequestExecutor
{
    /// <summary>Below this a read is answered as plain data: the extent query would cost more than it saves.</summary>
    internal const int SparseReadThreshold = 64 * 1024;

    /// <summary>At most this many chunks in one sparse reply; the rest of the range is sent as data.</summary>
    private const int MaxSparseChunks = 32;

    private bool SparseReadApplies(in NbdRequest request) =>
        _context.StructuredReplies &&
        (request.Flags & NbdCommandFlags.DontFragment) == 0 &&
        request.Length >= SparseReadThreshold &&
        (_context.Device.Capabilities & BlockDeviceCapabilities.BlockStatus) != 0;

    /// <summary>Returns the reply, or null when the range holds no zero extent (the caller then sends plain data).</summary>
    private async ValueTask<ReadOnlyMemory<byte>?> TrySparseReadAsync(RequestContext rc)
    {
        NbdRequest request = rc.Request;
        long offset = (long)request.Offset;
        long length = (long)request.Length;
        BlockExtent[] extents = rc.Extents(MaxSparseChunks);
        int count = await _context.Device.GetExtentsAsync(offset, length, extents.AsMemory(0, MaxSparseChunks)).ConfigureAwait(false);
        count = NormalizeExtents(extents, count, length);
        if (count == 0 || (count == 1 && (extents[0].State & ExtentState.Zero) == 0))
        {
            return null;
        }

        int headerSize = ReplyEncoder.HeaderSize(_context);
        int replySize = 0;
        for (int i = 0; i < count; i++)
        {
            replySize += headerSize + ((extents[i].State & ExtentState.Zero) != 0 ? 12 : 8 + (int)extents[i].Length);
        }
        if (rc.Buffer!.Length < replySize)
        {
            rc.GrowBuffer(replySize);
        }
        byte[] buffer = rc.Buffer!;
        int position = 0;
        long pieceOffset = offset;
        for (int i = 0; i < count; i++)
        {
            int pieceLength = (int)extents[i].Length;
            NbdReplyFlags flags = i == count - 1 ? NbdReplyFlags.Done : NbdReplyFlags.None;
            if ((extents[i].State & ExtentState.Zero) != 0)
            {
                position += ReplyEncoder.WriteChunkHeader(buffer.AsSpan(position), _context, request, flags, NbdReplyType.OffsetHole, 12);
                position += ReplyCodec.WriteOffsetHole(buffer.AsSpan(position), (ulong)pieceOffset, (uint)pieceLength);
            }
            else
            {
                position += ReplyEncoder.WriteChunkHeader(buffer.AsSpan(position), _context, request, flags, NbdReplyType.OffsetData, 8 + (ulong)pieceLength);
                position += ReplyCodec.WriteOffsetDataPrefix(buffer.AsSpan(position), (ulong)pieceOffset);
                await _context.Device.ReadAsync(pieceOffset, buffer.AsMemory(position, pieceLength)).ConfigureAwait(false);
                position += pieceLength;
            }
            pieceOffset += pieceLength;
        }
        return buffer.AsMemory(0, position);
    }

    /// <summary>
    /// Clips extents to the request, drops empty ones, merges neighbours of the same kind, and turns whatever
    /// the device left undescribed into one final data extent. Returns the number kept.
    /// </summary>
    private static int NormalizeExtents(BlockExtent[] extents, int count, long length)
    {
        int kept = 0;
        long covered = 0;
        for (int i = 0; i < count && covered < length; i++)
        {
            long piece = Math.Min(extents[i].Length, length - covered);
            if (piece <= 0)
            {
                continue;
            }
            ExtentState kind = extents[i].State & ExtentState.Zero;
            if (kept > 0 && (extents[kept - 1].State & ExtentState.Zero) == kind)
            {
                extents[kept - 1] = extents[kept - 1] with { Length = extents[kept - 1].Length + piece };
            }
            else
            {
                extents[kept++] = new BlockExtent(piece, kind);
            }
            covered += piece;
        }
        if (covered < length)
        {
            if (kept > 0 && (extents[kept - 1].State & ExtentState.Zero) == 0)
            {
                extents[kept - 1] = extents[kept - 1] with { Length = extents[kept - 1].Length + (length - covered) };
            }
            else if (kept < extents.Length)
            {
                extents[kept++] = new BlockExtent(length - covered, ExtentState.Data);
            }
            else
            {
                return 0;
            }
        }
        return kept;
    }
}
