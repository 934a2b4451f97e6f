using System.Net.Sockets;

namespace NbdFast.IO.Sockets;

/// <summary>
/// A stream over a socket that only ever makes blocking calls. Used for the handshake of connections an
/// io_uring reactor will own: an asynchronous .NET socket operation would register the descriptor with the
/// runtime's epoll engine, which would then keep waking up for traffic that belongs to the ring.
/// Cancellation shuts the socket down, which is what a missed handshake deadline deserves.
/// </summary>
internal sealed class BlockingSocketStream(Socket socket) : Stream
{
    public Socket Socket { get; } = socket;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) => Socket.Receive(buffer, SocketFlags.None);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using CancellationTokenRegistration registration = Register(cancellationToken);
        try
        {
            int read = Socket.Receive(buffer.Span, SocketFlags.None);
            // Cancelling shuts the socket down, which ends the Receive with 0 bytes: that is the deadline, not
            // the client's end of stream, and callers tell the two apart by the exception.
            cancellationToken.ThrowIfCancellationRequested();
            return ValueTask.FromResult(read);
        }
        catch (SocketException e)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw new IOException(e.Message, e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            buffer = buffer[Socket.Send(buffer, SocketFlags.None)..];
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using CancellationTokenRegistration registration = Register(cancellationToken);
        try
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
        catch (SocketException e)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw new IOException(e.Message, e);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Socket.Dispose();
        }
        base.Dispose(disposing);
    }

    private CancellationTokenRegistration Register(CancellationToken cancellationToken) =>
        cancellationToken.CanBeCanceled
            ? cancellationToken.Register(static state => ShutdownQuietly((Socket)state!), Socket)
            : default;

    private static void ShutdownQuietly(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }
}
