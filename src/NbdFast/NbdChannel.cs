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

    /// <summary>The underlying stream.</summary>
    public Stream Stream { get; }

    /// <summary>Closes the underlying stream.</summary>
    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
