using NbdFast.Negotiation;
using NbdFast.Protocol;

namespace NbdFast;

/// <summary>
/// Entry points of the NBD server, mirroring the OCaml <c>Nbd.Server</c> module: negotiate with a client
/// (<see cref="ConnectAsync"/>), then serve a device on the resulting connection.
/// </summary>
public static class NbdServer
{
    /// <summary>
    /// Runs the fixed-newstyle handshake and option haggling on <paramref name="channel"/> and returns when the
    /// client picks an export (NBD_OPT_EXPORT_NAME or NBD_OPT_GO).
    /// </summary>
    /// <param name="channel">The client's connection.</param>
    /// <param name="offer">Export names returned to NBD_OPT_LIST; null refuses LIST with NBD_REP_ERR_POLICY.</param>
    /// <param name="resolver">
    /// Optional: lets NBD_OPT_INFO and NBD_OPT_GO answer with real sizes and flags, and refuse unknown names
    /// with NBD_REP_ERR_UNKNOWN while the client may try again. Without it, any name is accepted and the
    /// export's description is sent by <see cref="NbdConnection.ServeAsync(Devices.IBlockDevice, bool, ServeOptions?, CancellationToken)"/>.
    /// </param>
    /// <param name="options">Handshake limits; <see cref="NegotiationOptions.Default"/> when null.</param>
    /// <param name="cancellationToken">
    /// The host is shutting down. The handshake is not cut mid-message: the server waits up to
    /// <see cref="NegotiationOptions.ShutdownGrace"/> for the client's next option (consuming its payload within
    /// the usual limits), answers it with NBD_REP_ERR_SHUTDOWN, closes the channel and throws
    /// <see cref="OperationCanceledException"/>. A client that sends nothing in the grace period is just
    /// disconnected (same exception); NBD_OPT_ABORT still gets its ACK (<see cref="ClientRequestedAbortException"/>);
    /// NBD_OPT_EXPORT_NAME, which has no error reply, only gets the close. A GO that the server would otherwise
    /// answer from <see cref="NbdConnection.ServeAsync(Devices.IBlockDevice, bool, ServeOptions?, CancellationToken)"/>
    /// (no resolver) is refused the same way when the token has fired by the time the client chose it.
    /// Works the same before and after STARTTLS.
    /// </param>
    /// <returns>The export name the client chose and the connection to serve it on.</returns>
    /// <exception cref="ClientRequestedAbortException">The client sent NBD_OPT_ABORT (its ACK has been sent).</exception>
    /// <exception cref="NbdProtocolException">The client broke the protocol or missed the handshake deadline.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (see above).</exception>
    /// <remarks>On any exception the channel has been closed.</remarks>
    public static async Task<(string Name, NbdConnection Connection)> ConnectAsync(
        NbdChannel channel,
        IReadOnlyList<string>? offer = null,
        NbdExportResolver? resolver = null,
        NegotiationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        options ??= NegotiationOptions.Default;
        if (options.ShutdownGrace < TimeSpan.Zero && options.ShutdownGrace != Timeout.InfiniteTimeSpan)
        {
            // Checked here: the grace is started from the host's cancel, where a throw would land on the wrong thread.
            throw new ArgumentOutOfRangeException(nameof(options), options.ShutdownGrace, "ShutdownGrace must be zero or positive, or Timeout.InfiniteTimeSpan.");
        }
        using var deadline = new CancellationTokenSource();
        if (options.HandshakeTimeout != Timeout.InfiniteTimeSpan)
        {
            deadline.CancelAfter(options.HandshakeTimeout);
        }
        // Shutdown does not cut reads short at once: it starts the grace period that bounds them.
        using var grace = new CancellationTokenSource();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, grace.Token);
        TimeSpan graceTime = options.ShutdownGrace;
        using CancellationTokenRegistration shutdown = cancellationToken.Register(() => grace.CancelAfter(graceTime));
        try
        {
            var negotiator = new OptionNegotiator(channel.Stream, offer, resolver, options, channel.Tls, cancellationToken);
            NegotiationResult result = await negotiator.RunAsync(limit.Token).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested && result.Pending == PendingExportReply.Go)
            {
                await RefuseGoForShutdownAsync(result, limit.Token).ConfigureAwait(false);
            }
            return (result.ExportName, new NbdConnection(channel, result));
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw new NbdProtocolException("The client did not finish the handshake in time.", e);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw new OperationCanceledException("The server is shutting down.", e, cancellationToken);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw new NbdProtocolException("The connection failed during the handshake.", e);
        }
        catch
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The client chose an export with GO after shutdown began: answer ERR_SHUTDOWN instead of the export.</summary>
    private static async Task RefuseGoForShutdownAsync(NegotiationResult result, CancellationToken cancellationToken)
    {
        var output = new HandshakeStream(result.Transport);
        ExportReplies.WriteShutdownRefusal(output, (uint)NbdOption.Go);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        throw new OperationCanceledException("The server is shutting down.");
    }

    /// <summary>
    /// Negotiates with <see cref="ConnectAsync"/>, runs <paramref name="handler"/> with the chosen name and the
    /// connection, and always closes the connection afterwards, also when the handler throws.
    /// </summary>
    /// <param name="channel">The client's connection.</param>
    /// <param name="offer">Export names returned to NBD_OPT_LIST; null refuses LIST.</param>
    /// <param name="handler">Serves the connection, typically with <see cref="NbdConnection.ServeAsync(Devices.IBlockDevice, bool, ServeOptions?, CancellationToken)"/>.</param>
    /// <param name="resolver">Optional export resolver (see <see cref="ConnectAsync"/>).</param>
    /// <param name="options">Handshake limits.</param>
    /// <param name="cancellationToken">Cancels the handshake.</param>
    public static async Task WithConnectionAsync(
        NbdChannel channel,
        IReadOnlyList<string>? offer,
        Func<string, NbdConnection, Task> handler,
        NbdExportResolver? resolver = null,
        NegotiationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        (string name, NbdConnection connection) = await ConnectAsync(channel, offer, resolver, options, cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await handler(name, connection).ConfigureAwait(false);
        }
    }
}
