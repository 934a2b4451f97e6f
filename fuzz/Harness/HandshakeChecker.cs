using System.Buffers.Binary;
using System.Text.Unicode;
using NbdFast.Protocol;

namespace NbdFast.Fuzzing;

/// <summary>A session broke a property the fuzzers check. Escapes the fuzz target, so it counts as a crash.</summary>
public sealed class FuzzPropertyException(string message) : Exception(message);

/// <summary>
/// Checks a handshake's server output against the client's script, option by option: the greeting first;
/// then, for each option the server read, replies that echo that option, with only the reply types the spec
/// allows for it, each well formed, ending in ACK or an error; and the session ends in a chosen export, an
/// ACK to ABORT, or a closed connection with no partial reply. Before TLS, the TLS policy holds: FORCEDTLS
/// acknowledges nothing but STARTTLS and ABORT, SELECTIVETLS neither lists nor describes the TLS-only export.
/// </summary>
public static class HandshakeChecker
{
    private static readonly HashSet<NbdOptionReplyType> GeneralErrors =
    [
        NbdOptionReplyType.ErrUnsup, NbdOptionReplyType.ErrPolicy, NbdOptionReplyType.ErrInvalid, NbdOptionReplyType.ErrPlatform,
        NbdOptionReplyType.ErrTlsReqd, NbdOptionReplyType.ErrUnknown, NbdOptionReplyType.ErrShutdown,
        NbdOptionReplyType.ErrBlockSizeReqd, NbdOptionReplyType.ErrTooBig, NbdOptionReplyType.ErrExtHeaderReqd,
    ];

    public static void Check(HandshakeConfig config, ReadOnlySpan<byte> client, HandshakeOutcome outcome)
    {
        ReadOnlySpan<byte> output = outcome.ServerOutput;
        Require(outcome.End == HandshakeEnd.ExportChosen || outcome.ConnectionClosed, "the connection was left open after the handshake failed");
        Require(output.Length >= NbdLimits.GreetingSize, "no greeting");
        Require(BinaryPrimitives.ReadUInt64BigEndian(output) == NbdMagic.NbdMagicValue
            && BinaryPrimitives.ReadUInt64BigEndian(output[8..]) == NbdMagic.IHaveOpt
            && BinaryPrimitives.ReadUInt16BigEndian(output[16..]) == (ushort)(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes),
            "malformed greeting");
        output = output[NbdLimits.GreetingSize..];
        if (client.Length < 4)
        {
            Require(outcome.End == HandshakeEnd.Closed && output.IsEmpty, "a session without client flags did not just close");
            return;
        }
        var flags = (NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(client);
        bool noZeroes = (flags & NbdClientFlags.NoZeroes) != 0;
        bool fixedNewstyle = (flags & NbdClientFlags.FixedNewstyle) != 0;
        client = client[4..];
        if ((flags & ~NbdClientFlags.Known) != 0)
        {
            Require(outcome.End == HandshakeEnd.Closed && output.IsEmpty, "unknown client flags were not refused by closing");
            return;
        }

        while (!output.IsEmpty)
        {
            Require(client.Length >= NbdLimits.OptionHeaderSize, "a reply without a whole option header");
            OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(client);
            Require(header.HasValidMagic, "a reply to an option without the IHAVEOPT magic");
            Require(header.Length <= (uint)config.Limits.MaxOptionLength, "a reply to an option over the length limit");
            Require(header.Length <= (uint)(client.Length - NbdLimits.OptionHeaderSize), "a reply to a truncated option");
            ReadOnlySpan<byte> data = client.Slice(NbdLimits.OptionHeaderSize, (int)header.Length);
            client = client[(NbdLimits.OptionHeaderSize + (int)header.Length)..];

            if (header.Option == (uint)NbdOption.ExportName)
            {
                Require(outcome.End == HandshakeEnd.ExportChosen, "an EXPORT_NAME reply, but no export was chosen");
                Require(output.Length == NbdLimits.ExportNameReplySize + (noZeroes ? 0 : NbdLimits.ExportNameReplyPadding),
                    "the EXPORT_NAME reply has the wrong size or is followed by more bytes");
                return;
            }
            // A client without fixed newstyle cannot parse option replies: it must never get one.
            Require(fixedNewstyle, "an option reply to a client without fixed newstyle");
            NbdOptionReplyType final = ReadRepliesTo(config, header.Option, ref output);
            CheckTlsPolicy(config, header.Option, data, final);
            if (final == NbdOptionReplyType.Ack && header.Option == (uint)NbdOption.StartTls)
            {
                Require(config.Tls != FuzzTls.None, "STARTTLS acknowledged without TLS configured");
                return; // everything after is TLS records
            }
            if (header.Option == (uint)NbdOption.Abort)
            {
                Require(outcome.End == HandshakeEnd.Aborted && output.IsEmpty, "ABORT was acknowledged but the session went on");
                return;
            }
            if (final == NbdOptionReplyType.Ack && header.Option == (uint)NbdOption.Go)
            {
                Require(outcome.End == HandshakeEnd.ExportChosen && output.IsEmpty, "GO succeeded but the session did not end in that export");
                return;
            }
        }
        // The output ended at a reply boundary without a final state: only a closed connection explains that.
        Require(outcome.End == HandshakeEnd.Closed, $"the session ended as {outcome.End} without the replies that lead there");
    }

    /// <summary>Reads the replies to one option up to its final one and returns the final reply's type.</summary>
    /// <summary>
    /// Before TLS (which these sessions never complete): FORCEDTLS acknowledges only STARTTLS and ABORT;
    /// SELECTIVETLS never describes the TLS-only export "b".
    /// </summary>
    private static void CheckTlsPolicy(HandshakeConfig config, uint option, ReadOnlySpan<byte> data, NbdOptionReplyType final)
    {
        if (final != NbdOptionReplyType.Ack)
        {
            return;
        }
        if (config.Tls == FuzzTls.Required)
        {
            Require(option is (uint)NbdOption.StartTls or (uint)NbdOption.Abort, $"option {option} acknowledged before TLS on a TLS-only server");
        }
        if (config.Tls == FuzzTls.Optional && config.WithResolver && option is (uint)NbdOption.Info or (uint)NbdOption.Go
            or (uint)NbdOption.ListMetaContext or (uint)NbdOption.SetMetaContext)
        {
            Require(!(data.Length >= 5 && BinaryPrimitives.ReadUInt32BigEndian(data) == 1 && data[4] == (byte)'b'),
                "the TLS-only export was described before TLS");
        }
    }

    private static NbdOptionReplyType ReadRepliesTo(HandshakeConfig config, uint option, ref ReadOnlySpan<byte> output)
    {
        bool sawExportInfo = false;
        bool sawIntermediate = false;
        while (true)
        {
            Require(output.Length >= NbdLimits.OptionReplyHeaderSize, "a partial option reply header");
            OptionReplyHeader reply = HandshakeCodec.ReadOptionReplyHeader(output);
            Require(reply.Magic == NbdMagic.OptionReply, "an option reply with the wrong magic");
            Require(reply.Option == option, $"a reply to option {reply.Option} while option {option} was pending");
            Require(reply.Length <= (uint)(output.Length - NbdLimits.OptionReplyHeaderSize), "an option reply shorter than its length field");
            ReadOnlySpan<byte> payload = output.Slice(NbdLimits.OptionReplyHeaderSize, (int)reply.Length);
            output = output[(NbdLimits.OptionReplyHeaderSize + (int)reply.Length)..];

            if (reply.Type == IntermediateFor(option) && reply.Type != NbdOptionReplyType.Ack)
            {
                CheckIntermediate(reply.Type, payload, ref sawExportInfo);
                Require(!(config.Tls == FuzzTls.Optional && config.WithResolver && reply.Type == NbdOptionReplyType.Server
                    && payload.Length >= 5 && BinaryPrimitives.ReadUInt32BigEndian(payload) == 1 && payload[4] == (byte)'b'),
                    "the TLS-only export was listed before TLS");
                sawIntermediate = true;
                continue;
            }
            if (reply.Type == NbdOptionReplyType.Ack)
            {
                Require(payload.IsEmpty, "an ACK with data");
                if (option is (uint)NbdOption.Info or (uint)NbdOption.Go)
                {
                    Require(sawExportInfo, "INFO/GO acknowledged without NBD_INFO_EXPORT");
                }
                return reply.Type;
            }
            Require(reply.IsError, $"reply type 0x{(uint)reply.Type:x} is not allowed for option {option}");
            Require(AllowedErrors(option).Contains(reply.Type), $"error 0x{(uint)reply.Type:x} is not allowed for option {option}");
            Require(!sawIntermediate, "an error after data replies");
            Require(payload.Length <= NbdLimits.MaxStringLength && Utf8.IsValid(payload), "an error message that is not a bounded UTF-8 string");
            return reply.Type;
        }
    }

    private static NbdOptionReplyType IntermediateFor(uint option) => option switch
    {
        (uint)NbdOption.List => NbdOptionReplyType.Server,
        (uint)NbdOption.Info or (uint)NbdOption.Go => NbdOptionReplyType.Info,
        (uint)NbdOption.ListMetaContext or (uint)NbdOption.SetMetaContext => NbdOptionReplyType.MetaContext,
        _ => NbdOptionReplyType.Ack,
    };

    private static IReadOnlySet<NbdOptionReplyType> AllowedErrors(uint option) => option switch
    {
        (uint)NbdOption.Abort => new HashSet<NbdOptionReplyType>(),
        (uint)NbdOption.StartTls => new HashSet<NbdOptionReplyType> { NbdOptionReplyType.ErrInvalid, NbdOptionReplyType.ErrPolicy, NbdOptionReplyType.ErrUnsup },
        (uint)NbdOption.List => new HashSet<NbdOptionReplyType> { NbdOptionReplyType.ErrInvalid, NbdOptionReplyType.ErrPolicy, NbdOptionReplyType.ErrTlsReqd, NbdOptionReplyType.ErrUnsup },
        (uint)NbdOption.StructuredReply or (uint)NbdOption.ExtendedHeaders => new HashSet<NbdOptionReplyType>
            { NbdOptionReplyType.ErrInvalid, NbdOptionReplyType.ErrExtHeaderReqd, NbdOptionReplyType.ErrTlsReqd, NbdOptionReplyType.ErrUnsup },
        >= (uint)NbdOption.ExportName and <= (uint)NbdOption.ExtendedHeaders => GeneralErrors,
        _ => new HashSet<NbdOptionReplyType> { NbdOptionReplyType.ErrUnsup, NbdOptionReplyType.ErrTlsReqd },
    };

    private static void CheckIntermediate(NbdOptionReplyType type, ReadOnlySpan<byte> payload, ref bool sawExportInfo)
    {
        switch (type)
        {
            case NbdOptionReplyType.Server:
                Require(payload.Length >= 4, "a SERVER reply without a name length");
                uint nameLength = BinaryPrimitives.ReadUInt32BigEndian(payload);
                Require(nameLength <= (uint)(payload.Length - 4) && nameLength <= NbdLimits.MaxStringLength, "a SERVER reply whose name overruns it");
                Require(Utf8.IsValid(payload[4..]) && payload.Length - 4 - (int)nameLength <= NbdLimits.MaxStringLength, "a SERVER reply with malformed text");
                break;
            case NbdOptionReplyType.Info:
                Require(payload.Length >= 2, "an INFO reply without a type");
                var info = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(payload);
                switch (info)
                {
                    case NbdInfoType.Export:
                        Require(payload.Length == 12, "NBD_INFO_EXPORT of the wrong size");
                        Require((BinaryPrimitives.ReadUInt16BigEndian(payload[10..]) & (ushort)NbdTransmissionFlags.HasFlags) != 0, "transmission flags without HAS_FLAGS");
                        sawExportInfo = true;
                        break;
                    case NbdInfoType.Name or NbdInfoType.Description:
                        Require(payload.Length - 2 <= NbdLimits.MaxStringLength && Utf8.IsValid(payload[2..]), "NBD_INFO_NAME/DESCRIPTION is not a bounded UTF-8 string");
                        break;
                    case NbdInfoType.BlockSize:
                        Require(payload.Length == 14, "NBD_INFO_BLOCK_SIZE of the wrong size");
                        uint minimum = BinaryPrimitives.ReadUInt32BigEndian(payload[2..]);
                        uint preferred = BinaryPrimitives.ReadUInt32BigEndian(payload[6..]);
                        uint maximum = BinaryPrimitives.ReadUInt32BigEndian(payload[10..]);
                        Require(minimum >= 1 && minimum <= preferred && preferred <= Math.Max(maximum, preferred), "inconsistent block sizes");
                        break;
                    default:
                        throw new FuzzPropertyException($"an INFO reply of unknown type {(ushort)info}");
                }
                break;
            case NbdOptionReplyType.MetaContext:
                Require(payload.Length >= 4 && payload.Length - 4 <= NbdLimits.MaxStringLength && Utf8.IsValid(payload[4..]), "a malformed META_CONTEXT reply");
                break;
        }
    }

    private static void Require(bool condition, string property)
    {
        if (!condition)
        {
            throw new FuzzPropertyException(property);
        }
    }
}
