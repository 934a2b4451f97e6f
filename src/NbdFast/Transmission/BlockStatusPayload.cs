using System.Buffers.Binary;
using NbdFast.Negotiation;

namespace NbdFast.Transmission;

/// <summary>Parses the BLOCK_STATUS payload form: a 64-bit effect length, then the 32-bit context ids wanted.</summary>
internal static class BlockStatusPayload
{
    /// <summary>
    /// True when the payload is well formed and names only contexts this connection selected, each once.
    /// NbdFast serves a single context, so that means exactly one id: base:allocation's.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> payload, out ulong effectLength)
    {
        effectLength = 0;
        if (payload.Length < 12 || (payload.Length - 8) % 4 != 0)
        {
            return false;
        }
        effectLength = BinaryPrimitives.ReadUInt64BigEndian(payload);
        ReadOnlySpan<byte> ids = payload[8..];
        return ids.Length == 4 && BinaryPrimitives.ReadUInt32BigEndian(ids) == NegotiatedFeatures.AllocationContextId;
    }
}
