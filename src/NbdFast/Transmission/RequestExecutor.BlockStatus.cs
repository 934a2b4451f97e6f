using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Negotiation;
using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>BLOCK_STATUS for <c>base:allocation</c>: one chunk of extents, 32-bit or 64-bit descriptors.</summary>
internal sealed partial class RequestExecutor
{
    private async ValueTask<ReadOnlyMemory<byte>> BlockStatusAsync(RequestContext rc)
    {
        NbdRequest request = rc.Request;
        int maxExtents = (request.Flags & NbdCommandFlags.ReqOne) != 0 ? 1 : _context.Options.MaxExtentsPerReply;
        BlockExtent[] extents = rc.Extents(maxExtents);
        int count = await _context.Device.GetExtentsAsync((long)request.Offset, (long)request.Length, extents.AsMemory(0, maxExtents)).ConfigureAwait(false);
        if (count <= 0)
        {
            throw new BlockDeviceException(NbdError.IO, "the device reported no extents");
        }

        count = ExtentsWithinRequest(extents.AsSpan(0, count), request.Length);
        bool extended = _context.ExtendedHeaders;
        int descriptorSize = extended ? 16 : 8;
        int prefix = extended ? 8 : 4;
        int headerSize = ReplyEncoder.HeaderSize(_context);
        int payload = prefix + count * descriptorSize;
        rc.GrowBuffer(headerSize + payload);
        Span<byte> buffer = rc.Buffer;
        ReplyEncoder.WriteChunkHeader(buffer, _context, request, NbdReplyFlags.Done,
            extended ? NbdReplyType.BlockStatusExt : NbdReplyType.BlockStatus, (ulong)payload);
        Span<byte> body = buffer[headerSize..];
        BinaryPrimitives.WriteUInt32BigEndian(body, NegotiatedFeatures.AllocationContextId);
        if (extended)
        {
            BinaryPrimitives.WriteUInt32BigEndian(body[4..], (uint)count);
        }
        body = body[prefix..];
        ulong remaining = request.Length;
        for (int i = 0; i < count; i++)
        {
            ulong length = Math.Min((ulong)extents[i].Length, remaining);
            remaining -= length;
            body = body[(extended
                ? ReplyCodec.WriteExtendedBlockDescriptor(body, length, (ulong)extents[i].State)
                : ReplyCodec.WriteBlockDescriptor(body, (uint)Math.Min(length, uint.MaxValue), (uint)extents[i].State))..];
        }
        return rc.Buffer.AsMemory(0, headerSize + payload);
    }

    /// <summary>
    /// How many extents to send: drops zero-length ones a device should not have produced and stops once the
    /// request is covered, so no descriptor is empty or reaches past the request.
    /// </summary>
    private static int ExtentsWithinRequest(Span<BlockExtent> extents, ulong requested)
    {
        int kept = 0;
        ulong covered = 0;
        foreach (BlockExtent extent in extents)
        {
            if (extent.Length <= 0)
            {
                continue;
            }
            extents[kept++] = extent;
            covered += (ulong)extent.Length;
            if (covered >= requested)
            {
                break;
            }
        }
        return kept > 0 ? kept : throw new BlockDeviceException(NbdError.IO, "the device reported no extents");
    }
}
