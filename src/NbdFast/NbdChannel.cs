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
    /// <summary>Wraps <paramref name="stream"/>; the channel owns it and disposes it on close.</summary>
    public NbdChannel(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Stream = stream;
    }

    /// <summary>
    /// Wraps a connected socket. With an <paramref name="uring"/> engine the handshake runs on blocking calls
    /// and the transmission phase on an io_uring reactor; without, on a <see cref="NetworkStream"/>.
    /// The channel owns the socket.
    /// </summary>
    public NbdChannel(Socket socket, NbdUringEngine? uring = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Socket = socket;
        Uring = uring;
        Stream = uring is null ? new NetworkStream(socket, ownsSocket: true) : new BlockingSocketStream(socket);
    }

    /// <summary>The underlying stream.</summary>
    public Stream Stream { get; }

    /// <summary>The socket, when the channel was made from one.</summary>
    public Socket? Socket { get; }

    /// <summary>The io_uring engine that will serve the transmission phase, if any.</summary>
    public NbdUringEngine? Uring { get; }

    /// <summary>Closes the underlying stream.</summary>
    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
