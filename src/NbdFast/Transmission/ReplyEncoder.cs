using NbdFast.Protocol;

namespace NbdFast.Transmission;

/// <summary>
/// Builds reply headers in the style the connection negotiated: simple, structured or extended. A header is
/// written so that it ends exactly where its payload begins, letting a read reply go out as one contiguous
/// buffer (header right in front of the data the device read).
/// </summary>
internal static class ReplyEncoder
{
    /// <summary>Room reserved in front of read data: the largest header plus the OFFSET_DATA prefix.</summary>
    public const int Headroom = NbdLimits.ExtendedReplyHeaderSize + 8;

    /// <summary>
    /// Writes the header of a successful READ carrying <paramref name="length"/> bytes into
    /// <paramref name="buffer"/>[..Headroom], right-aligned; returns where the reply starts.
    /// </summary>
    public static int WriteReadHeader(Span<byte> buffer, TransmissionContext context, in NbdRequest request, int length)
    {
        if (!context.StructuredReplies)
        {
            return Headroom - ReplyCodec.WriteSimple(buffer[(Headroom - NbdLimits.SimpleReplyHeaderSize)..], NbdError.None, request.Cookie);
        }
        if (length == 0)
        {
            // OFFSET_DATA may not be empty: a zero-length read is answered with a bare final chunk.
            int start = Headroom - HeaderSize(context);
            WriteChunkHeader(buffer[start..], context, request, NbdReplyFlags.Done, NbdReplyType.None, 0);
            return start;
        }
        int begin = Headroom - HeaderSize(context) - 8;
        int headerSize = WriteChunkHeader(buffer[begin..], context, request, NbdReplyFlags.Done, NbdReplyType.OffsetData, (ulong)length + 8);
        ReplyCodec.WriteOffsetDataPrefix(buffer[(begin + headerSize)..], request.Offset);
        return begin;
    }

    /// <summary>Writes a success reply without payload; returns its length.</summary>
    public static int WriteSuccess(Span<byte> buffer, TransmissionContext context, in NbdRequest request) =>
        context.ExtendedHeaders
            ? WriteChunkHeader(buffer, context, request, NbdReplyFlags.Done, NbdReplyType.None, 0)
            : ReplyCodec.WriteSimple(buffer, NbdError.None, request.Cookie);

    /// <summary>Writes an error reply (an ERROR chunk with a message when chunks are in use); returns its length.</summary>
    public static int WriteError(Span<byte> buffer, TransmissionContext context, in NbdRequest request, NbdError error, string? message)
    {
        if (!context.StructuredReplies)
        {
            return ReplyCodec.WriteSimple(buffer, error, request.Cookie);
        }
        int headerSize = HeaderSize(context);
        int payload = ReplyCodec.WriteErrorPayload(buffer[headerSize..], error, message ?? string.Empty, maxMessageBytes: MaxErrorMessage);
        WriteChunkHeader(buffer, context, request, NbdReplyFlags.Done, NbdReplyType.Error, (ulong)payload);
        return headerSize + payload;
    }

    /// <summary>Longest error message sent on the wire.</summary>
    public const int MaxErrorMessage = 120;

    /// <summary>Size of any reply header plus the largest error payload.</summary>
    public const int MaxSmallReply = NbdLimits.ExtendedReplyHeaderSize + 6 + MaxErrorMessage;

    public static int HeaderSize(TransmissionContext context) =>
        context.ExtendedHeaders ? NbdLimits.ExtendedReplyHeaderSize : NbdLimits.StructuredReplyHeaderSize;

    public static int WriteChunkHeader(Span<byte> buffer, TransmissionContext context, in NbdRequest request, NbdReplyFlags flags, NbdReplyType type, ulong length) =>
        context.ExtendedHeaders
            ? ReplyCodec.WriteExtended(buffer, flags, type, request.Cookie, request.Offset, length)
            : ReplyCodec.WriteStructured(buffer, flags, type, request.Cookie, (uint)length);
}
