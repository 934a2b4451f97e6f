using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>Encodes the replies that describe an export: the INFO set that precedes a successful ACK, and the EXPORT_NAME reply.</summary>
internal static class ExportReplies
{
    /// <summary>Queues NBD_REP_INFO replies (EXPORT always, NAME/DESCRIPTION/BLOCK_SIZE as requested) and the final ACK.</summary>
    public static void WriteInfoAndAck(HandshakeStream output, uint option, string name, NbdExport export, NbdTransmissionFlags flags, InfoRequests requests)
    {
        output.Advance(HandshakeCodec.WriteInfoExport(output.Reserve(32), option, (ulong)export.Device.Size, flags));
        if ((requests & InfoRequests.Name) != 0)
        {
            output.Advance(HandshakeCodec.WriteInfoText(output.Reserve(MaxTextReply(name)), option, NbdInfoType.Name, name));
        }
        if ((requests & InfoRequests.Description) != 0 && !string.IsNullOrEmpty(export.Description))
        {
            string description = Truncate(export.Description);
            output.Advance(HandshakeCodec.WriteInfoText(output.Reserve(MaxTextReply(description)), option, NbdInfoType.Description, description));
        }
        Devices.BlockSizeConstraints sizes = export.Device.BlockSize;
        // Non-default constraints are advertised even when not asked for, as the spec wants; a client ignores
        // information it did not request.
        if ((requests & InfoRequests.BlockSize) != 0 || sizes.Minimum > 1 || sizes.MaximumPayload < NbdLimits.DefaultMaxPayload)
        {
            output.Advance(HandshakeCodec.WriteInfoBlockSize(output.Reserve(34), option, sizes.Minimum, sizes.Preferred, sizes.MaximumPayload));
        }
        output.Advance(HandshakeCodec.WriteAck(output.Reserve(NbdLimits.OptionReplyHeaderSize), option));
    }

    /// <summary>Queues the reply to NBD_OPT_EXPORT_NAME.</summary>
    public static void WriteExportName(HandshakeStream output, NbdExport export, NbdTransmissionFlags flags, bool noZeroes) =>
        output.Advance(HandshakeCodec.WriteExportNameReply(output.Reserve(NbdLimits.ExportNameReplySize + NbdLimits.ExportNameReplyPadding),
            (ulong)export.Device.Size, flags, noZeroes));

    /// <summary>Queues NBD_REP_ERR_SHUTDOWN for an option the server will not act on because it is shutting down.</summary>
    public static void WriteShutdownRefusal(HandshakeStream output, uint option) =>
        output.Advance(HandshakeCodec.WriteError(output.Reserve(MaxTextReply(OptionNegotiator.ShutdownMessage)), option,
            NbdOptionReplyType.ErrShutdown, OptionNegotiator.ShutdownMessage));

    /// <summary>Room for an option reply carrying <paramref name="text"/> plus a few fixed fields.</summary>
    public static int MaxTextReply(string text) => NbdLimits.OptionReplyHeaderSize + 8 + text.Length * 3;

    /// <summary>
    /// Descriptions are host-supplied but still bounded by the spec's 4096-byte string limit: cut by UTF-8
    /// length, at a whole character.
    /// </summary>
    public static string Truncate(string text)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(text) <= NbdLimits.MaxStringLength)
        {
            return text;
        }
        int bytes = 0;
        int chars = 0;
        foreach (System.Text.Rune rune in text.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > NbdLimits.MaxStringLength)
            {
                break;
            }
            bytes += rune.Utf8SequenceLength;
            chars += rune.Utf16SequenceLength;
        }
        return text[..chars];
    }
}
