using System.Buffers;

namespace NbdFast.Fuzzing;

/// <summary>
/// A duplex stream whose client side is a script fixed in advance: reads return the scripted bytes, then end
/// of stream; writes are recorded. Everything completes synchronously, so a whole NBD session runs on the
/// calling thread, deterministically (what a coverage-guided fuzzer and an allocation count both need).
/// </summary>
public sealed class ScriptedStream(ReadOnlyMemory<byte> script) : Stream
{
    private readonly ArrayBufferWriter<byte> _written = new(256);
    private int _position;
    private bool _inputEnded;

    /// <summary>The server closed the connection.</summary>
    public bool Disposed { get; private set; }

    /// <summary>Bytes of the script the server has read so far.</summary>
    public int Consumed => _position;

    /// <summary>Everything the server wrote.</summary>
    public ReadOnlySpan<byte> Written => _written.WrittenSpan;

    /// <summary>Makes every further read see end of stream (the client hung up after its script so far).</summary>
    public void EndInput() => _inputEnded = true;

    public override bool CanRead => !Disposed;
    public override bool CanWrite => !Disposed;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        if (_inputEnded)
        {
            return 0;
        }
        int count = Math.Min(buffer.Length, script.Length - _position);
        script.Span.Slice(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(buffer.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        _written.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.Span);
        return ValueTask.CompletedTask;
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
        Disposed = true;
        base.Dispose(disposing);
    }
}
