using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>The handlers of the individual options.</summary>
internal sealed partial class OptionNegotiator
{
    private async ValueTask<NegotiationResult> HandleExportNameAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_features.ExtendedHeaders)
        {
            throw new NbdProtocolException("EXPORT_NAME after extended headers were negotiated.");
        }
        string name = ClientText.TryDecode(data.Span)
            ?? throw new NbdProtocolException("EXPORT_NAME with an invalid name.");
        if (_resolver is null)
        {
            return new NegotiationResult(name, _features, null, PendingExportReply.ExportName, InfoRequests.None);
        }
        // EXPORT_NAME has no error reply: an unknown name can only end the session.
        NbdExport export = await _resolver(name, cancellationToken).ConfigureAwait(false)
            ?? throw new NbdProtocolException($"EXPORT_NAME for unknown export '{ClientText.Echo(name)}'.");
        if (HiddenUntilTls(export))
        {
            throw new NbdProtocolException($"EXPORT_NAME for TLS-only export '{ClientText.Echo(name)}' before TLS.");
        }
        if (export.UnavailableReason is string reason)
        {
            throw new NbdProtocolException($"EXPORT_NAME for '{ClientText.Echo(name)}', which is unavailable: {reason}");
        }
        ExportReplies.WriteExportName(_io, export, TransmissionFlagsBuilder.For(export.Device, export.ReadOnly, _features, name), _features.NoZeroes);
        return new NegotiationResult(name, _features, export, PendingExportReply.None, InfoRequests.None);
    }

    private async ValueTask HandleAbortAsync(uint option, CancellationToken cancellationToken)
    {
        // The spec asks for an ACK, but the client may already be gone: that is not an error.
        WriteAck(option);
        try
        {
            await _io.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
        }
        throw new ClientRequestedAbortException();
    }

    private async ValueTask HandleListAsync(uint option, int length, CancellationToken cancellationToken)
    {
        if (length != 0)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "LIST must not carry data");
            return;
        }
        if (_offer is null)
        {
            WriteError(option, NbdOptionReplyType.ErrPolicy, "listing exports is not allowed");
            return;
        }
        foreach (string name in _offer)
        {
            string description = string.Empty;
            if (_resolver is not null)
            {
                NbdExport? export = await _resolver(name, cancellationToken).ConfigureAwait(false);
                if (HiddenUntilTls(export))
                {
                    continue; // SELECTIVETLS: TLS-only (and unresolvable) exports are not listed in clear text
                }
                description = ExportReplies.Truncate(export?.Description ?? string.Empty);
            }
            _io.Advance(HandshakeCodec.WriteServer(_io.Reserve(ExportReplies.MaxTextReply(name) + description.Length * 3), option, name, description));
        }
        WriteAck(option);
        // Like nbdkit: a client that listed exports may go on to ask about each of them (granted once).
        if (!_listBudgetGranted)
        {
            _listBudgetGranted = true;
            _optionBudget += _options.MaxOptions * Math.Min(_offer.Count, 16);
        }
    }

    private async ValueTask<NegotiationResult?> HandleInfoOrGoAsync(uint option, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (OptionParser.ParseInfo(data.Span) is not InfoRequest request)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "malformed INFO/GO request");
            return null;
        }
        bool isGo = option == (uint)NbdOption.Go;
        if (_resolver is null)
        {
            if (isGo)
            {
                return new NegotiationResult(request.Name, _features, null, PendingExportReply.Go, request.Requests);
            }
            WriteError(option, NbdOptionReplyType.ErrUnsup, "INFO is not available on this server; use GO");
            return null;
        }
        NbdExport? export = await _resolver(request.Name, cancellationToken).ConfigureAwait(false);
        if (HiddenUntilTls(export))
        {
            // Unknown and TLS-only names get the same answer, so clients cannot enumerate exports before TLS.
            WriteError(option, NbdOptionReplyType.ErrTlsReqd, "TLS is required for this export");
            return null;
        }
        if (export is null)
        {
            WriteError(option, NbdOptionReplyType.ErrUnknown, $"export '{ClientText.Echo(request.Name)}' not found");
            return null;
        }
        if (isGo && export.UnavailableReason is string reason)
        {
            // INFO still describes it; only entering transmission is refused, and the client may try again later.
            WriteError(option, NbdOptionReplyType.ErrPolicy, ExportReplies.Truncate(reason));
            return null;
        }
        ExportReplies.WriteInfoAndAck(_io, option, request.Name, export,
            TransmissionFlagsBuilder.For(export.Device, export.ReadOnly, _features, request.Name), request.Requests);
        return isGo ? new NegotiationResult(request.Name, _features, export, PendingExportReply.None, request.Requests) : null;
    }

    private void HandleStructuredReply(uint option, int length)
    {
        if (length != 0)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "STRUCTURED_REPLY must not carry data");
        }
        else if (_features.ExtendedHeaders)
        {
            WriteError(option, NbdOptionReplyType.ErrExtHeaderReqd, "extended headers are already in use");
        }
        else if (_features.StructuredReplies)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "structured replies are already negotiated");
        }
        else
        {
            _features.StructuredReplies = true;
            WriteAck(option);
        }
    }

    private void HandleExtendedHeaders(uint option, int length)
    {
        if (length != 0)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "EXTENDED_HEADERS must not carry data");
        }
        else if (_features.ExtendedHeaders)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "extended headers are already negotiated");
        }
        else
        {
            _features.ExtendedHeaders = true;
            WriteAck(option);
        }
    }

    private async ValueTask HandleMetaContextAsync(uint option, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        bool isSet = option == (uint)NbdOption.SetMetaContext;
        if (isSet)
        {
            // SET replaces the selection even when it fails.
            _features.AllocationContextExport = null;
        }
        if (!_features.ReplyChunks)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "negotiate structured replies or extended headers first");
            return;
        }
        if (OptionParser.ParseMetaContext(data.Span) is not MetaContextRequest request)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "malformed meta context request");
            return;
        }
        NbdExport? target = _resolver is null ? null : await _resolver(request.ExportName, cancellationToken).ConfigureAwait(false);
        if (_resolver is not null && HiddenUntilTls(target))
        {
            WriteError(option, NbdOptionReplyType.ErrTlsReqd, "TLS is required for this export");
            return;
        }
        if (_resolver is not null && target is null)
        {
            WriteError(option, NbdOptionReplyType.ErrUnknown, $"export '{ClientText.Echo(request.ExportName)}' not found");
            return;
        }
        bool matches = isSet
            ? request.Queries.Contains(NbdLimits.BaseAllocation)
            : request.Queries.Count == 0 || request.Queries.Any(q => q is "base:" or NbdLimits.BaseAllocation);
        if (matches)
        {
            uint id = isSet ? NegotiatedFeatures.AllocationContextId : 0;
            _io.Advance(HandshakeCodec.WriteMetaContext(_io.Reserve(64), option, id, NbdLimits.BaseAllocation));
            if (isSet)
            {
                _features.AllocationContextExport = request.ExportName;
            }
        }
        WriteAck(option);
    }
}
