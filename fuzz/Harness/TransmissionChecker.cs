using System.Buffers.Binary;
using NbdFast.Protocol;

namespace NbdFast.Fuzzing;

/// <summary>
/// Checks the replies of a transmission phase: with chunked replies the whole output must frame as reply
/// headers of the negotiated style (extended headers: only extended chunks; structured: simple replies and
/// structured chunks), with known chunk types, payloads that fit, and well-formed error payloads. Simple
/// replies carry read data only the client can frame, so there only the first header is checked.
/// </summary>
public static class TransmissionChecker
{
    public static void Check(TransmissionConfig config, TransmissionOutcome outcome)
    {
        if (!outcome.ConnectionClosed)
        {
            throw new FuzzPropertyException("the connection was left open after serving");
        }
        ReadOnlySpan<byte> output = outcome.Replies;
        while (!output.IsEmpty)
        {
            int size = ReplyCodec.TryRead(output, out NbdReplyHeader header);
            Require(size > 0, size == 0 ? "a partial reply header" : "a reply with an unknown magic");
            output = output[size..];
            if (config.Replies == FuzzReplies.Simple)
            {
                Require(header.Magic == NbdMagic.SimpleReply, "a chunk on a connection without structured replies");
                return; // read data follows success replies to READ; only the client knows their lengths
            }
            if (config.Replies == FuzzReplies.Extended)
            {
                Require(header.Magic == NbdMagic.ExtendedReply, "a non-extended reply with extended headers");
            }
            if (header.Magic == NbdMagic.SimpleReply)
            {
                // Allowed for commands without data; a READ answered this way would leave its data to break
                // the framing of what follows.
                continue;
            }
            Require(header.Length <= (ulong)output.Length, "a chunk whose payload is cut short");
            ReadOnlySpan<byte> payload = output[..(int)header.Length];
            output = output[(int)header.Length..];
            CheckChunk(config, header, payload);
        }
    }

    private static void CheckChunk(TransmissionConfig config, in NbdReplyHeader header, ReadOnlySpan<byte> payload)
    {
        switch (header.Type)
        {
            case NbdReplyType.None:
                Require(payload.IsEmpty && (header.Flags & NbdReplyFlags.Done) != 0, "a NONE chunk with data or without DONE");
                break;
            case NbdReplyType.OffsetData:
                Require(payload.Length > 8, "an empty OFFSET_DATA chunk");
                Require(BinaryPrimitives.ReadUInt64BigEndian(payload) <= TransmissionConfig.DeviceSize - (ulong)(payload.Length - 8), "OFFSET_DATA beyond the export");
                break;
            case NbdReplyType.OffsetHole:
                Require(payload.Length == 12, "an OFFSET_HOLE chunk of the wrong size");
                break;
            case NbdReplyType.BlockStatus:
                Require(config.Replies == FuzzReplies.Structured && payload.Length >= 12 && (payload.Length - 4) % 8 == 0, "a malformed BLOCK_STATUS chunk");
                break;
            case NbdReplyType.BlockStatusExt:
                Require(config.Replies == FuzzReplies.Extended && payload.Length >= 24 && (payload.Length - 8) % 16 == 0, "a malformed BLOCK_STATUS_EXT chunk");
                break;
            case NbdReplyType.Error or NbdReplyType.ErrorOffset:
                Require(payload.Length >= 6, "an ERROR chunk without error and message length");
                Require(BinaryPrimitives.ReadUInt32BigEndian(payload) != 0, "an ERROR chunk with error 0");
                int messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
                int expected = 6 + messageLength + (header.Type == NbdReplyType.ErrorOffset ? 8 : 0);
                Require(payload.Length == expected, "an ERROR chunk whose message length does not match its size");
                break;
            default:
                throw new FuzzPropertyException($"a chunk of unknown type 0x{(ushort)header.Type:x4}");
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
