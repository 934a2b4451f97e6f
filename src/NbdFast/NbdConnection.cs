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
    private readonly Lock _gate = new();
    private Diagnostics.ConnectionMetrics? _metrics;
    private NbdSessionEnd? _end;
    private int _served;
    private bool _closing;
    private Task? _close;
    private TaskCompletionSource? _serving;
    private UringConnection? _ring;
    private StreamSession? _session;

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

    /// <summary>Payload bytes the client has read successfully while being served.</summary>
    public long BytesRead => _metrics?.BytesRead ?? 0;

    /// <summary>Payload bytes the client has written successfully while being served.</summary>
    public long BytesWritten => _metrics?.BytesWritten ?? 0;

    /// <summary>How often the server stopped reading this client because its in-flight budget was spent (back-pressure).</summary>
    public long InFlightLimitStalls => _metrics?.BudgetStalls ?? 0;

    /// <summary>Why serving ended, once <see cref="ServeAsync(IBlockDevice, bool, ServeOptions?, CancellationToken)"/> has returned; null before.</summary>
    public NbdSessionEnd? SessionEnd => _end;

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
    /// <param name="cancellationToken">
    /// Graceful shutdown (on every transport). Requests already read are finished and answered normally;
    /// every request parsed after the token fired (NBD_CMD_DISC excepted) is answered with NBD_ESHUTDOWN
    /// (a simple reply or an error chunk, as negotiated; a WRITE's payload is consumed first). Once nothing
    /// is in flight, a writable device is flushed, so every write acknowledged on this connection is durable;
    /// then the session lingers, still answering ESHUTDOWN, until the client disconnects or
    /// <see cref="ServeOptions.ShutdownLinger"/> elapses, and ServeAsync returns normally. When the client
    /// chose its export with NBD_OPT_GO and its reply is still owed (no resolver), a token that has already
    /// fired gets that GO answered with NBD_REP_ERR_SHUTDOWN instead, and ServeAsync returns at once.
    /// </param>
    /// <remarks>
    /// The session also ends, and ServeAsync returns normally, after <see cref="ServeOptions.IdleTimeout"/>
    /// without requests, and when <see cref="CloseAsync"/> is called meanwhile (hard stop; see there).
    /// </remarks>
    /// <exception cref="ObjectDisposedException">The connection was closed before serving began.</exception>
    /// <exception cref="InvalidOperationException">The connection was already served.</exception>
    /// <exception cref="Exception">
    /// The final flush of a graceful shutdown failed: the device's exception (an <see cref="IOException"/> or a
    /// <see cref="BlockDeviceException"/>) is thrown after the session has ended, so the host can report it.
    /// </exception>
    public async Task ServeAsync(IBlockDevice device, bool readOnly = true, ServeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(device);
        options ??= ServeOptions.Default;
        options.Validate();
        if (Interlocked.Exchange(ref _served, 1) != 0)
        {
            throw new InvalidOperationException("A connection is served only once.");
        }
        var serving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closing, this);
            _serving = serving;
        }
        try
        {
            await ServeCoreAsync(device, readOnly, options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsClosing && e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // Hard stop while the export reply was being sent: that is how serving ends.
        }
        finally
        {
            serving.TrySetResult();
        }
    }

    private async Task ServeCoreAsync(IBlockDevice device, bool readOnly, ServeOptions options, CancellationToken cancellationToken)
    {
        NegotiatedFeatures features = _negotiation.Features;
        NbdTransmissionFlags flags = TransmissionFlagsBuilder.For(device, readOnly, features, ExportName);
        if (!await SendPendingExportReplyAsync(device, readOnly, flags, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var context = new TransmissionContext(device, flags, features.StructuredReplies, features.ExtendedHeaders,
            features.HasAllocationContext(ExportName), options, ExportName);
        _metrics = context.Metrics;
        context.Metrics.ConnectionOpened();
        try
        {
            if (_channel.Uring is NbdUringEngine uring && _channel.Socket is { } socket && !_negotiation.TlsActive)
            {
                UringConnection ring;
                lock (_gate)
                {
                    if (_closing)
                    {
                        return;
                    }
                    // Under the lock: once CloseAsync has looked, no ring session may start on the socket.
                    ring = UringTransmission.Create(uring, socket, context);
                    _ring = ring;
                }
                _end = (NbdSessionEnd)await UringTransmission.RunAsync(ring, cancellationToken).ConfigureAwait(false);
                return;
            }
            var session = new StreamSession(_negotiation.Transport, context);
            lock (_gate)
            {
                if (_closing)
                {
                    return;
                }
                _session = session;
            }
            _end = (NbdSessionEnd)await session.RunAsync(cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// Closes the connection. Safe to call more than once and from any thread; every call waits for the same close.
    /// While <see cref="ServeAsync(IBlockDevice, bool, ServeOptions?, CancellationToken)"/> runs this is a hard
    /// stop: pending reads and sends are cut (the socket is shut down; on io_uring the descriptor is only closed
    /// once no submission refers to it), replies not yet sent are dropped, no final flush is made, and ServeAsync
    /// returns normally as soon as the device operations already started have completed; this call returns
    /// after that. Otherwise a TLS session gets its close-notify first.
    /// </summary>
    public ValueTask CloseAsync()
    {
        TaskCompletionSource? mine = null;
        Task close;
        lock (_gate)
        {
            if (_close is null)
            {
                _closing = true;
                mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _close = mine.Task;
            }
            close = _close;
        }
        if (mine is not null)
        {
            _ = CloseCoreAsync(mine);
        }
        return new ValueTask(close);
    }

    /// <summary>Same as <see cref="CloseAsync"/>.</summary>
    public ValueTask DisposeAsync() => CloseAsync();

    private bool IsClosing
    {
        get
        {
            lock (_gate)
            {
                return _closing;
            }
        }
    }

    private async Task CloseCoreAsync(TaskCompletionSource done)
    {
        try
        {
            TaskCompletionSource? serving;
            UringConnection? ring;
            StreamSession? session;
            lock (_gate)
            {
                (serving, ring, session) = (_serving, _ring, _session);
            }
            if (serving is not null && !serving.Task.IsCompleted)
            {
                if (ring is not null)
                {
                    ring.Abort();
                }
                else
                {
                    // The raw stream under any TLS layer: closing it fails every pending read and write.
                    session?.Abort();
                    await _channel.Stream.DisposeAsync().ConfigureAwait(false);
                }
                await serving.Task.ConfigureAwait(false);
                if (_negotiation.TlsActive)
                {
                    await DisposeQuietlyAsync(_negotiation.Transport).ConfigureAwait(false);
                }
            }
            else if (_negotiation.TlsActive)
            {
                await TlsUpgrade.CloseAsync(_negotiation.Transport).ConfigureAwait(false);
            }
            await _channel.DisposeAsync().ConfigureAwait(false);
            done.TrySetResult();
        }
        catch (Exception e)
        {
            done.TrySetException(e);
        }
    }

    private static async ValueTask DisposeQuietlyAsync(Stream stream)
    {
        try
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    /// <summary>Sends the reply to the client's final option if it is still owed; false when GO was refused for shutdown.</summary>
    private async ValueTask<bool> SendPendingExportReplyAsync(IBlockDevice device, bool readOnly, NbdTransmissionFlags flags, CancellationToken shutdown)
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
                return true;
            case PendingExportReply.Go:
            {
                // The shutdown token is not a reason to cut this write short: it only decides what is written.
                var output = new HandshakeStream(_negotiation.Transport);
                if (shutdown.IsCancellationRequested)
                {
                    ExportReplies.WriteShutdownRefusal(output, (uint)NbdOption.Go);
                    await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    return false;
                }
                ExportReplies.WriteInfoAndAck(output, (uint)NbdOption.Go, ExportName, export, flags, _negotiation.InfoRequests);
                await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                return true;
            }
            case PendingExportReply.ExportName:
            {
                var output = new HandshakeStream(_negotiation.Transport);
                ExportReplies.WriteExportName(output, export, flags, _negotiation.Features.NoZeroes);
                await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                return true;
            }
        }
        return true;
    }
}
