using System.Buffers.Binary;
using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>A parsed NBD_OPT_INFO / NBD_OPT_GO request.</summary>
internal readonly record struct InfoRequest(string Name, InfoRequests Requests);

/// <summary>A parsed LIST_META_CONTEXT / SET_META_CONTEXT request.</summary>
internal sealed record MetaContextRequest(string ExportName, IReadOnlyList<string> Queries);

/// <summary>
/// Pure parsers of option payloads. Every length is checked against what remains before it is used, so a
/// lying length field can only produce an error, never an over-read or a large allocation.
/// </summary>
internal static class OptionParser
{
    /// <summary>Parses INFO/GO data; null when malformed (ERR_INVALID).</summary>
    public static InfoRequest? ParseInfo(ReadOnlySpan<byte> data)
    {
        if (data.Length < 6)
        {
            return null;
        }
        uint nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)(data.Length - 6))
        {
            return null;
        }
        string? name = ClientText.TryDecode(data.Slice(4, (int)nameLength));
        ReadOnlySpan<byte> rest = data[(4 + (int)nameLength)..];
        int count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        rest = rest[2..];
        if (name is null || rest.Length != count * 2)
        {
            return null;
        }
        var requests = InfoRequests.None;
        for (int i = 0; i < count; i++)
        {
            // Unknown information types are ignored, as the spec requires.
            requests |= (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(rest[(i * 2)..]) switch
            {
                NbdInfoType.Name => InfoRequests.Name,
                NbdInfoType.Description => InfoRequests.Description,
                NbdInfoType.BlockSize => InfoRequests.BlockSize,
                _ => InfoRequests.None,
            };
        }
        return new InfoRequest(name, requests);
    }

    /// <summary>Parses LIST/SET_META_CONTEXT data; null when malformed (ERR_INVALID).</summary>
    public static MetaContextRequest? ParseMetaContext(ReadOnlySpan<byte> data)
    {
        if (!TryReadString(ref data, out string? exportName) || data.Length < 4)
        {
            return null;
        }
        uint count = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];
        // Each query needs at least its 4-byte length, so this bounds the list by the option size.
        if (count > (uint)data.Length / 4)
        {
            return null;
        }
        var queries = new List<string>((int)count);
        for (uint i = 0; i < count; i++)
        {
            if (!TryReadString(ref data, out string? query))
            {
                return null;
            }
            queries.Add(query);
        }
        return data.IsEmpty ? new MetaContextRequest(exportName, queries) : null;
    }

    private static bool TryReadString(ref ReadOnlySpan<byte> data, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = null;
        if (data.Length < 4)
        {
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (length > (uint)(data.Length - 4))
        {
            return false;
        }
        value = ClientText.TryDecode(data.Slice(4, (int)length));
        data = data[(4 + (int)length)..];
        return value is not null;
    }
}
