using System.Net.Sockets;
using NbdFast.IO.Sockets;

namespace NbdFast;

/// <summary>
/// The connection a client reached the server on: any bidirectional <see cref="System.IO.Stream"/>
/// (a <c>NetworkStream</c>, a pipe, an in-memory duplex stream). A channel without TLS credentials
/// negotiates in NOTLS mode.
/// </summary>
public sealed class NbdChannel : IAsyncDisposable
{
    /// <summary>
    /// Wraps <paramref name="stream"/>; the channel owns it and disposes it on close. With
    /// <paramref name="tls"/> the handshake offers STARTTLS (FORCEDTLS unless the options say otherwise);
    /// without, it runs in NOTLS mode.
    /// </summary>
    public NbdChannel(Stream stream, NbdTlsOptions? tls = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        tls?.Validate(nameof(tls));
        Stream = stream;
        Tls = tls;
    }

    /// <summary>
    /// Wraps a connected socket. With an <paramref name="uring"/> engine the handshake runs on blocking calls
    /// and the transmission phase on an io_uring reactor; without, on a <see cref="NetworkStream"/>.
    /// The channel owns the socket.
    /// </summary>
    /// <remarks>A TLS channel always uses the socket transport: the reactor speaks clear text only.</remarks>
    public NbdChannel(Socket socket, NbdUringEngine? uring = null, NbdTlsOptions? tls = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        tls?.Validate(nameof(tls));
        Socket = socket;
        Tls = tls;
        Uring = tls is null ? uring : null;
        Stream = Uring is null ? new NetworkStream(socket, ownsSocket: true) : new BlockingSocketStream(socket);
    }

    /// <summary>The TLS credentials and policy, if the server offers TLS on this channel.</summary>
    public NbdTlsOptions? Tls { get; }

    /// <summary>The underlying stream.</summary>
    public Stream Stream { get; }

    /// <summary>The socket, when the channel was made from one.</summary>
    public Socket? Socket { get; }

    /// <summary>The io_uring engine that will serve the transmission phase, if any.</summary>
    public NbdUringEngine? Uring { get; }

    /// <summary>Closes the underlying stream.</summary>
    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
