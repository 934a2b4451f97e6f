using System.Buffers;

namespace NbdFast.Negotiation;

/// <summary>
/// Exact reads and batched writes for the handshake. Replies to one option are gathered and sent with one
/// write. The handshake is rare, so clarity beats cleverness here, but no buffer is ever sized from a
/// client's length field beyond the option cap.
/// </summary>
internal sealed class HandshakeStream(Stream stream)
{
    private readonly ArrayBufferWriter<byte> _output = new(1024);

    /// <summary>The stream in use; replaced by the TLS stream after STARTTLS.</summary>
    public Stream Inner { get; set; } = stream;

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes; a short stream is a protocol error.</summary>
    public async ValueTask ReadExactAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await Inner.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new NbdProtocolException("The client closed the connection during the handshake.", e);
        }
    }

    /// <summary>A span of at least <paramref name="size"/> bytes to encode into; commit with <see cref="Advance"/>.</summary>
    public Span<byte> Reserve(int size) => _output.GetSpan(size);

    public void Advance(int count) => _output.Advance(count);

    /// <summary>Sends everything encoded since the last flush.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_output.WrittenCount == 0)
        {
            return;
        }
        await Inner.WriteAsync(_output.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        _output.ResetWrittenCount();
    }
}
