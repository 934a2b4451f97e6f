using NbdFast.Devices;
using NbdFast.IO.Uring;
using NbdFast.Negotiation;
using NbdFast.Protocol;
using NbdFast.Transmission;

namespace NbdFast;

/// <summary>
/// A client that finished option haggling and chose an export. Serve it once with
/// <see cref="ServeAsync(IBlockDevice, bool, ServeOptions?, CancellationToken)"/>, then close it.
/// </summary>
public sealed class NbdConnection : IAsyncDisposable
{
    private readonly NbdChannel _channel;
    private readonly NegotiationResult _negotiation;
    private int _served;
    private int _closed;

    internal NbdConnection(NbdChannel channel, NegotiationResult negotiation)
    {
        _channel = channel;
        _negotiation = negotiation;
    }

    /// <summary>The export name the client chose.</summary>
    public string ExportName => _negotiation.ExportName;

    /// <summary>The export the resolver returned for <see cref="ExportName"/>, when a resolver was given.</summary>
    public NbdExport? Export => _negotiation.Export;

    /// <summary>The client negotiated structured replies.</summary>
    public bool StructuredReplies => _negotiation.Features.StructuredReplies;

    /// <summary>The session runs over TLS (STARTTLS succeeded).</summary>
    public bool TlsActive => _negotiation.TlsActive;

    /// <summary>The client negotiated 64-bit extended headers.</summary>
    public bool ExtendedHeaders => _negotiation.Features.ExtendedHeaders;

    /// <summary>
    /// Serves <paramref name="device"/> until the client disconnects (NBD_CMD_DISC or a closed connection).
    /// Read-only by default: NBD_FLAG_READ_ONLY is set and a write, trim or write-zeroes gets EPERM and ends
    /// the session (see <see cref="ServeOptions.EndSessionOnReadOnlyWrite"/>).
    /// </summary>
    /// <param name="device">The block device to serve.</param>
    /// <param name="readOnly">Refuse writes (the default).</param>
    /// <param name="options">Pipelining limits and policies; <see cref="ServeOptions.Default"/> when null.</param>
    /// <param name="cancellationToken">Stops reading new requests; those in flight are finished and answered.</param>
    public async Task ServeAsync(IBlockDevice device, bool readOnly = true, ServeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (Interlocked.Exchange(ref _served, 1) != 0)
        {
            throw new InvalidOperationException("A connection is served only once.");
        }
        NegotiatedFeatures features = _negotiation.Features;
        NbdTransmissionFlags flags = TransmissionFlagsBuilder.For(device, readOnly, features, ExportName);
        await SendPendingExportReplyAsync(device, readOnly, flags, cancellationToken).ConfigureAwait(false);

        var context = new TransmissionContext(device, flags, features.StructuredReplies, features.ExtendedHeaders,
            features.HasAllocationContext(ExportName), options ?? ServeOptions.Default, ExportName);
        context.Metrics.ConnectionOpened();
        try
        {
            if (_channel.Uring is NbdUringEngine uring && _channel.Socket is { } socket && !_negotiation.TlsActive)
            {
                await UringTransmission.RunAsync(uring, socket, context, cancellationToken).ConfigureAwait(false);
                return;
            }
            var session = new StreamSession(_negotiation.Transport, context);
            await session.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            context.Metrics.ConnectionClosed();
        }
    }

    /// <summary>Serves the export the resolver returned, with its read-only setting.</summary>
    /// <exception cref="InvalidOperationException">No resolver supplied an export.</exception>
    public Task ServeAsync(ServeOptions? options = null, CancellationToken cancellationToken = default)
    {
        NbdExport export = Export ?? throw new InvalidOperationException("No export was resolved; call ServeAsync(device, readOnly).");
        return ServeAsync(export.Device, export.ReadOnly, options, cancellationToken);
    }

    /// <summary>Closes the connection. Safe to call more than once.</summary>
    public async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            if (_negotiation.TlsActive)
            {
                await TlsUpgrade.CloseAsync(_negotiation.Transport).ConfigureAwait(false);
            }
            await _channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Same as <see cref="CloseAsync"/>.</summary>
    public ValueTask DisposeAsync() => CloseAsync();

    private async ValueTask SendPendingExportReplyAsync(IBlockDevice device, bool readOnly, NbdTransmissionFlags flags, CancellationToken cancellationToken)
    {
        NbdExport export = _negotiation.Export ?? new NbdExport(device, readOnly);
        switch (_negotiation.Pending)
        {
            case PendingExportReply.None:
                if (!ReferenceEquals(export.Device, device) && (export.Device.Size != device.Size ||
                    TransmissionFlagsBuilder.For(export.Device, export.ReadOnly, _negotiation.Features, ExportName) != flags))
                {
                    throw new InvalidOperationException("The device differs from the export already described to the client.");
                }
                return;
            case PendingExportReply.Go:
            {
                var output = new HandshakeStream(_negotiation.Transport);
                ExportReplies.WriteInfoAndAck(output, (uint)NbdOption.Go, ExportName, export, flags, _negotiation.InfoRequests);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            case PendingExportReply.ExportName:
            {
                var output = new HandshakeStream(_negotiation.Transport);
                ExportReplies.WriteExportName(output, export, flags, _negotiation.Features.NoZeroes);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
        }
    }
}
