using System.Buffers.Binary;
using System.Text;

namespace NbdFast.Protocol;

/// <summary>
/// Encoders and decoders for the fixed-newstyle handshake: greeting, client flags, option requests and
/// option replies. Every method works on caller-provided spans and allocates nothing.
/// </summary>
public static class HandshakeCodec
{
    /// <summary>Writes the 18-byte newstyle greeting.</summary>
    public static int WriteGreeting(Span<byte> destination, NbdHandshakeFlags flags)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.NbdMagicValue);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)flags);
        return NbdLimits.GreetingSize;
    }

    /// <summary>Reads the 4-byte client flags that answer the greeting.</summary>
    public static NbdClientFlags ReadClientFlags(ReadOnlySpan<byte> source) =>
        (NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(source);

    /// <summary>Writes the 4-byte client flags (used by test clients).</summary>
    public static int WriteClientFlags(Span<byte> destination, NbdClientFlags flags)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)flags);
        return 4;
    }

    /// <summary>Decodes a 16-byte option request header.</summary>
    public static OptionRequestHeader ReadOptionHeader(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64BigEndian(source),
        BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
        BinaryPrimitives.ReadUInt32BigEndian(source[12..]));

    /// <summary>Encodes a 16-byte option request header (used by test clients).</summary>
    public static int WriteOptionHeader(Span<byte> destination, uint option, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], length);
        return NbdLimits.OptionHeaderSize;
    }

    /// <summary>Writes a 20-byte option reply header.</summary>
    public static int WriteOptionReplyHeader(Span<byte> destination, uint option, NbdOptionReplyType type, uint length)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], length);
        return NbdLimits.OptionReplyHeaderSize;
    }

    /// <summary>Decodes a 20-byte option reply header (used by test clients).</summary>
    public static OptionReplyHeader ReadOptionReplyHeader(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64BigEndian(source),
        BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
        (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(source[12..]),
        BinaryPrimitives.ReadUInt32BigEndian(source[16..]));

    /// <summary>Writes NBD_REP_ACK with no data.</summary>
    public static int WriteAck(Span<byte> destination, uint option) =>
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.Ack, 0);

    /// <summary>Writes an error reply carrying a message (which may be empty).</summary>
    public static int WriteError(Span<byte> destination, uint option, NbdOptionReplyType error, ReadOnlySpan<char> message)
    {
        int messageLength = Encoding.UTF8.GetBytes(message, destination[NbdLimits.OptionReplyHeaderSize..]);
        WriteOptionReplyHeader(destination, option, error, (uint)messageLength);
        return NbdLimits.OptionReplyHeaderSize + messageLength;
    }

    /// <summary>Writes NBD_REP_SERVER: the name's length, the name, then an optional description.</summary>
    public static int WriteServer(Span<byte> destination, uint option, ReadOnlySpan<char> name, ReadOnlySpan<char> description)
    {
        Span<byte> payload = destination[NbdLimits.OptionReplyHeaderSize..];
        int nameLength = Encoding.UTF8.GetBytes(name, payload[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)nameLength);
        int descriptionLength = Encoding.UTF8.GetBytes(description, payload[(4 + nameLength)..]);
        int length = 4 + nameLength + descriptionLength;
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.Server, (uint)length);
        return NbdLimits.OptionReplyHeaderSize + length;
    }

    /// <summary>Writes NBD_REP_INFO with NBD_INFO_EXPORT: size and transmission flags.</summary>
    public static int WriteInfoExport(Span<byte> destination, uint option, ulong size, NbdTransmissionFlags flags)
    {
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.Info, 12);
        Span<byte> payload = destination[NbdLimits.OptionReplyHeaderSize..];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(payload[2..], size);
        BinaryPrimitives.WriteUInt16BigEndian(payload[10..], (ushort)flags);
        return NbdLimits.OptionReplyHeaderSize + 12;
    }

    /// <summary>Writes NBD_REP_INFO with NBD_INFO_NAME or NBD_INFO_DESCRIPTION.</summary>
    public static int WriteInfoText(Span<byte> destination, uint option, NbdInfoType type, ReadOnlySpan<char> text)
    {
        Span<byte> payload = destination[NbdLimits.OptionReplyHeaderSize..];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)type);
        int textLength = Encoding.UTF8.GetBytes(text, payload[2..]);
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.Info, (uint)(2 + textLength));
        return NbdLimits.OptionReplyHeaderSize + 2 + textLength;
    }

    /// <summary>Writes NBD_REP_INFO with NBD_INFO_BLOCK_SIZE.</summary>
    public static int WriteInfoBlockSize(Span<byte> destination, uint option, uint minimum, uint preferred, uint maximumPayload)
    {
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.Info, 14);
        Span<byte> payload = destination[NbdLimits.OptionReplyHeaderSize..];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(payload[2..], minimum);
        BinaryPrimitives.WriteUInt32BigEndian(payload[6..], preferred);
        BinaryPrimitives.WriteUInt32BigEndian(payload[10..], maximumPayload);
        return NbdLimits.OptionReplyHeaderSize + 14;
    }

    /// <summary>Writes NBD_REP_META_CONTEXT: a context id and its name.</summary>
    public static int WriteMetaContext(Span<byte> destination, uint option, uint contextId, ReadOnlySpan<char> name)
    {
        Span<byte> payload = destination[NbdLimits.OptionReplyHeaderSize..];
        BinaryPrimitives.WriteUInt32BigEndian(payload, contextId);
        int nameLength = Encoding.UTF8.GetBytes(name, payload[4..]);
        WriteOptionReplyHeader(destination, option, NbdOptionReplyType.MetaContext, (uint)(4 + nameLength));
        return NbdLimits.OptionReplyHeaderSize + 4 + nameLength;
    }

    /// <summary>
    /// Writes the reply to NBD_OPT_EXPORT_NAME: size, transmission flags and, unless the client set
    /// NBD_FLAG_C_NO_ZEROES, 124 zero bytes.
    /// </summary>
    public static int WriteExportNameReply(Span<byte> destination, ulong size, NbdTransmissionFlags flags, bool noZeroes)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)flags);
        if (noZeroes)
        {
            return NbdLimits.ExportNameReplySize;
        }
        destination.Slice(NbdLimits.ExportNameReplySize, NbdLimits.ExportNameReplyPadding).Clear();
        return NbdLimits.ExportNameReplySize + NbdLimits.ExportNameReplyPadding;
    }
}

/// <summary>A decoded option request header.</summary>
/// <param name="Magic">Must equal <see cref="NbdMagic.IHaveOpt"/>.</param>
/// <param name="Option">The raw option number (may be unknown).</param>
/// <param name="Length">Length of the option data that follows.</param>
public readonly record struct OptionRequestHeader(ulong Magic, uint Option, uint Length)
{
    /// <summary>True when the magic is IHAVEOPT.</summary>
    public bool HasValidMagic => Magic == NbdMagic.IHaveOpt;
}

/// <summary>A decoded option reply header.</summary>
/// <param name="Magic">Must equal <see cref="NbdMagic.OptionReply"/>.</param>
/// <param name="Option">The option this replies to.</param>
/// <param name="Type">The reply type.</param>
/// <param name="Length">Length of the reply data that follows.</param>
public readonly record struct OptionReplyHeader(ulong Magic, uint Option, NbdOptionReplyType Type, uint Length)
{
    /// <summary>True when the reply type has the error bit set.</summary>
    public bool IsError => ((uint)Type & (uint)NbdOptionReplyType.ErrorBit) != 0;
}
