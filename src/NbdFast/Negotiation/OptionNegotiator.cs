using System.Buffers;
using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>
/// The fixed-newstyle handshake as a state machine over a stream: greeting, client flags, then options until
/// the client picks an export (EXPORT_NAME or a successful GO) or aborts. Anything that forbids an error reply
/// throws <see cref="NbdProtocolException"/> and the caller closes the connection.
/// </summary>
internal sealed partial class OptionNegotiator
{
    private readonly HandshakeStream _io;
    private readonly IReadOnlyList<string>? _offer;
    private readonly NbdExportResolver? _resolver;
    private readonly NegotiationOptions _options;
    private readonly NegotiatedFeatures _features = new();
    private readonly byte[] _header = new byte[NbdLimits.OptionHeaderSize];
    private readonly NbdTlsOptions? _tls;
    private bool _tlsActive;
    private int _optionBudget;
    private bool _listBudgetGranted;
    private readonly CancellationToken _shutdown;

    // shutdown: the host's shutdown signal. It does not interrupt reads (the caller bounds them with a grace
    // period); once it has fired, the next option is answered with NBD_REP_ERR_SHUTDOWN instead of being handled.
    public OptionNegotiator(Stream stream, IReadOnlyList<string>? offer, NbdExportResolver? resolver, NegotiationOptions options,
        NbdTlsOptions? tls = null, CancellationToken shutdown = default)
    {
        _shutdown = shutdown;
        _io = new HandshakeStream(stream);
        _tls = tls;
        _offer = offer;
        _resolver = resolver;
        _options = options;
        _optionBudget = options.MaxOptions;
    }

    public async Task<NegotiationResult> RunAsync(CancellationToken cancellationToken)
    {
        HandshakeCodec.WriteGreeting(_io.Reserve(NbdLimits.GreetingSize), NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        _io.Advance(NbdLimits.GreetingSize);
        await _io.FlushAsync(cancellationToken).ConfigureAwait(false);

        await _io.ReadExactAsync(_header.AsMemory(0, 4), cancellationToken).ConfigureAwait(false);
        NbdClientFlags clientFlags = HandshakeCodec.ReadClientFlags(_header);
        if ((clientFlags & ~NbdClientFlags.Known) != 0)
        {
            throw new NbdProtocolException($"Unknown client flags 0x{(uint)clientFlags:x8}.");
        }
        _features.FixedNewstyle = (clientFlags & NbdClientFlags.FixedNewstyle) != 0;
        _features.NoZeroes = (clientFlags & NbdClientFlags.NoZeroes) != 0;

        while (true)
        {
            await _io.ReadExactAsync(_header, cancellationToken).ConfigureAwait(false);
            OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(_header);
            if (!header.HasValidMagic)
            {
                throw new NbdProtocolException("Option request without the IHAVEOPT magic.");
            }
            if (--_optionBudget < 0)
            {
                throw new NbdProtocolException("Too many options without choosing an export.");
            }
            if (header.Length > (uint)_options.MaxOptionLength)
            {
                throw new NbdProtocolException($"Option {header.Option} carries {header.Length} bytes, over the {_options.MaxOptionLength}-byte limit.");
            }
            if (!_features.FixedNewstyle && header.Option != (uint)NbdOption.ExportName)
            {
                // A non-fixed client cannot parse option replies, so the only safe answer is to hang up.
                throw new NbdProtocolException("A client without fixed newstyle sent an option other than EXPORT_NAME.");
            }

            byte[] data = ArrayPool<byte>.Shared.Rent((int)header.Length);
            try
            {
                await _io.ReadExactAsync(data.AsMemory(0, (int)header.Length), cancellationToken).ConfigureAwait(false);
                if (_shutdown.IsCancellationRequested && header.Option != (uint)NbdOption.Abort)
                {
                    await RefuseForShutdownAsync(header.Option, cancellationToken).ConfigureAwait(false);
                }
                NegotiationResult? result = await HandleOptionAsync(header.Option, data.AsMemory(0, (int)header.Length), cancellationToken).ConfigureAwait(false);
                await _io.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (result is not null)
                {
                    return result with { Transport = _io.Inner, TlsActive = _tlsActive };
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(data);
            }
        }
    }

    /// <summary>
    /// The server is shutting down: NBD_REP_ERR_SHUTDOWN (EXPORT_NAME has no error reply, so it only gets the
    /// close), then <see cref="OperationCanceledException"/> so the caller closes the connection.
    /// </summary>
    private async ValueTask RefuseForShutdownAsync(uint option, CancellationToken cancellationToken)
    {
        if (option != (uint)NbdOption.ExportName)
        {
            WriteError(option, NbdOptionReplyType.ErrShutdown, ShutdownMessage);
            await _io.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        throw new OperationCanceledException("The server is shutting down.", _shutdown);
    }

    /// <summary>The text sent with NBD_REP_ERR_SHUTDOWN.</summary>
    public const string ShutdownMessage = "the server is shutting down";

    /// <summary>FORCEDTLS before STARTTLS: only STARTTLS and ABORT are honoured.</summary>
    private bool MustRefuseBeforeTls(uint option) =>
        _tls is { Mode: NbdTlsMode.Required } && !_tlsActive && option is not ((uint)NbdOption.StartTls or (uint)NbdOption.Abort);

    /// <summary>SELECTIVETLS: whether <paramref name="export"/> is out of reach until TLS (unknown names look the same).</summary>
    private bool HiddenUntilTls(NbdExport? export) =>
        _tls is { Mode: NbdTlsMode.Optional } && !_tlsActive && (export is null || export.TlsOnly);

    private async ValueTask<NegotiationResult?> HandleOptionAsync(uint option, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (MustRefuseBeforeTls(option))
        {
            if (option == (uint)NbdOption.ExportName)
            {
                // EXPORT_NAME has no error reply; nothing about the export may leak before TLS.
                throw new NbdProtocolException("EXPORT_NAME before TLS on a server that requires TLS.");
            }
            WriteError(option, NbdOptionReplyType.ErrTlsReqd, "TLS is required: send NBD_OPT_STARTTLS first");
            return null;
        }
        switch ((NbdOption)option)
        {
            case NbdOption.ExportName:
                return await HandleExportNameAsync(data, cancellationToken).ConfigureAwait(false);
            case NbdOption.Abort:
                await HandleAbortAsync(option, cancellationToken).ConfigureAwait(false);
                return null; // unreachable: HandleAbortAsync always throws
            case NbdOption.List:
                await HandleListAsync(option, data.Length, cancellationToken).ConfigureAwait(false);
                return null;
            case NbdOption.StartTls:
                await HandleStartTlsAsync(option, data.Length, cancellationToken).ConfigureAwait(false);
                return null;
            case NbdOption.Info:
            case NbdOption.Go:
                return await HandleInfoOrGoAsync(option, data, cancellationToken).ConfigureAwait(false);
            case NbdOption.StructuredReply:
                HandleStructuredReply(option, data.Length);
                return null;
            case NbdOption.ExtendedHeaders:
                HandleExtendedHeaders(option, data.Length);
                return null;
            case NbdOption.ListMetaContext:
            case NbdOption.SetMetaContext:
                await HandleMetaContextAsync(option, data, cancellationToken).ConfigureAwait(false);
                return null;
            default:
                WriteError(option, NbdOptionReplyType.ErrUnsup, "unsupported option");
                return null;
        }
    }

    private void WriteAck(uint option) =>
        _io.Advance(HandshakeCodec.WriteAck(_io.Reserve(NbdLimits.OptionReplyHeaderSize), option));

    private void WriteError(uint option, NbdOptionReplyType error, string message) =>
        _io.Advance(HandshakeCodec.WriteError(_io.Reserve(ExportReplies.MaxTextReply(message)), option, error, message));
}
