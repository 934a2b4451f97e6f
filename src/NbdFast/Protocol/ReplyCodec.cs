using System.Buffers.Binary;

namespace NbdFast.Protocol;

/// <summary>A decoded reply header of any style (simple, structured or extended).</summary>
/// <param name="Magic">Which reply style this is.</param>
/// <param name="Flags">Chunk flags (zero for simple replies).</param>
/// <param name="Type">Chunk type (zero for simple replies).</param>
/// <param name="Error">Error of a simple reply (zero for chunks).</param>
/// <param name="Cookie">The request's cookie.</param>
/// <param name="Offset">The request's offset (extended replies only).</param>
/// <param name="Length">Payload length (chunks only).</param>
public readonly record struct NbdReplyHeader(uint Magic, NbdReplyFlags Flags, NbdReplyType Type, NbdError Error, ulong Cookie, ulong Offset, ulong Length);

/// <summary>Encoders and decoders for reply headers and the fixed parts of chunk payloads.</summary>
public static class ReplyCodec
{
    /// <summary>Writes a 16-byte simple reply header.</summary>
    public static int WriteSimple(Span<byte> destination, NbdError error, ulong cookie)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        return NbdLimits.SimpleReplyHeaderSize;
    }

    /// <summary>Writes a 20-byte structured reply chunk header.</summary>
    public static int WriteStructured(Span<byte> destination, NbdReplyFlags flags, NbdReplyType type, ulong cookie, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
        return NbdLimits.StructuredReplyHeaderSize;
    }

    /// <summary>Writes a 32-byte extended reply chunk header.</summary>
    public static int WriteExtended(Span<byte> destination, NbdReplyFlags flags, NbdReplyType type, ulong cookie, ulong offset, ulong length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.ExtendedReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], offset);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], length);
        return NbdLimits.ExtendedReplyHeaderSize;
    }

    /// <summary>
    /// Decodes the reply header at the start of <paramref name="source"/>. Returns the header size consumed
    /// (16, 20 or 32), 0 when more bytes are needed, or -1 when the magic is unknown.
    /// </summary>
    public static int TryRead(ReadOnlySpan<byte> source, out NbdReplyHeader header)
    {
        header = default;
        if (source.Length < 4)
        {
            return 0;
        }
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        switch (magic)
        {
            case NbdMagic.SimpleReply:
                if (source.Length < NbdLimits.SimpleReplyHeaderSize) return 0;
                header = new NbdReplyHeader(magic, NbdReplyFlags.None, NbdReplyType.None,
                    (NbdError)BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt64BigEndian(source[8..]), 0, 0);
                return NbdLimits.SimpleReplyHeaderSize;
            case NbdMagic.StructuredReply:
                if (source.Length < NbdLimits.StructuredReplyHeaderSize) return 0;
                header = new NbdReplyHeader(magic, (NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
                    (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]), NbdError.None,
                    BinaryPrimitives.ReadUInt64BigEndian(source[8..]), 0, BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
                return NbdLimits.StructuredReplyHeaderSize;
            case NbdMagic.ExtendedReply:
                if (source.Length < NbdLimits.ExtendedReplyHeaderSize) return 0;
                header = new NbdReplyHeader(magic, (NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
                    (NbdReplyType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]), NbdError.None,
                    BinaryPrimitives.ReadUInt64BigEndian(source[8..]), BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
                    BinaryPrimitives.ReadUInt64BigEndian(source[24..]));
                return NbdLimits.ExtendedReplyHeaderSize;
            default:
                return -1;
        }
    }

    /// <summary>Writes the 8-byte offset that starts an OFFSET_DATA payload.</summary>
    public static int WriteOffsetDataPrefix(Span<byte> destination, ulong offset)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, offset);
        return 8;
    }

    /// <summary>Writes an OFFSET_HOLE payload: offset and 32-bit hole size.</summary>
    public static int WriteOffsetHole(Span<byte> destination, ulong offset, uint holeSize)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], holeSize);
        return 12;
    }

    /// <summary>
    /// Writes an ERROR (or ERROR_OFFSET when <paramref name="offset"/> is given) payload: error, message length,
    /// message, and the offset. The message is truncated to <paramref name="maxMessageBytes"/> UTF-8 bytes, and never
    /// exceeds the spec's 4096-byte string limit (so it always fits the 16-bit message length field).
    /// </summary>
    public static int WriteErrorPayload(Span<byte> destination, NbdError error, ReadOnlySpan<char> message, ulong? offset = null, int maxMessageBytes = 256)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)error);
        Span<byte> text = destination.Slice(6, Math.Min(Math.Min(maxMessageBytes, NbdLimits.MaxStringLength), destination.Length - 6 - (offset.HasValue ? 8 : 0)));
        int messageLength = EncodeTruncated(message, text);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)messageLength);
        int written = 6 + messageLength;
        if (offset is ulong value)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination[written..], value);
            written += 8;
        }
        return written;
    }

    /// <summary>Writes one 32-bit block status descriptor: length and status flags.</summary>
    public static int WriteBlockDescriptor(Span<byte> destination, uint length, uint status)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], status);
        return 8;
    }

    /// <summary>Writes one 64-bit block status descriptor: length and status flags.</summary>
    public static int WriteExtendedBlockDescriptor(Span<byte> destination, ulong length, ulong status)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, length);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], status);
        return 16;
    }

    // Encodes as much of the message as fits without splitting a UTF-8 sequence.
    private static int EncodeTruncated(ReadOnlySpan<char> message, Span<byte> destination)
    {
        System.Text.Unicode.Utf8.FromUtf16(message, destination, out _, out int bytesWritten);
        return bytesWritten;
    }
}
