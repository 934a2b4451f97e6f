using System.Buffers.Binary;

namespace NbdFast.Protocol;

/// <summary>A transmission-phase request header, compact or extended.</summary>
/// <param name="Flags">Command flags.</param>
/// <param name="Command">The raw command type (may be unknown).</param>
/// <param name="Cookie">Opaque handle echoed in the reply.</param>
/// <param name="Offset">Offset into the export.</param>
/// <param name="Length">Payload or effect length (32-bit in compact headers, 64-bit in extended ones).</param>
public readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, ulong Length);

/// <summary>Encoders and decoders for the 28-byte compact and 32-byte extended request headers.</summary>
public static class RequestHeaderCodec
{
    /// <summary>Header size for the negotiated header style.</summary>
    public static int HeaderSize(bool extended) =>
        extended ? NbdLimits.ExtendedRequestHeaderSize : NbdLimits.RequestHeaderSize;

    /// <summary>
    /// Decodes a request header. Returns false when the magic does not match the negotiated header style,
    /// which means framing is lost.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, bool extended, out NbdRequest request)
    {
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        var flags = (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]);
        var command = (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]);
        ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(source[8..]);
        ulong offset = BinaryPrimitives.ReadUInt64BigEndian(source[16..]);
        if (extended)
        {
            request = new NbdRequest(flags, command, cookie, offset, BinaryPrimitives.ReadUInt64BigEndian(source[24..]));
            return magic == NbdMagic.ExtendedRequest;
        }
        request = new NbdRequest(flags, command, cookie, offset, BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return magic == NbdMagic.Request;
    }

    /// <summary>Encodes a request header (used by clients and tests). A compact header truncates nothing: the length must fit 32 bits.</summary>
    public static int Write(Span<byte> destination, in NbdRequest request, bool extended)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, extended ? NbdMagic.ExtendedRequest : NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)request.Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)request.Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], request.Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], request.Offset);
        if (extended)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination[24..], request.Length);
            return NbdLimits.ExtendedRequestHeaderSize;
        }
        if (request.Length > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(request), "A compact request header carries a 32-bit length.");
        }
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], (uint)request.Length);
        return NbdLimits.RequestHeaderSize;
    }
}
