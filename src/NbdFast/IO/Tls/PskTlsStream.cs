using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using static NbdFast.IO.Tls.OpenSslNative;

namespace NbdFast.IO.Tls;

/// <summary>
/// The server side of TLS with pre-shared keys (RFC 4279 for TLS 1.2, external PSK for TLS 1.3), run by OpenSSL 3
/// over two memory BIOs: ciphertext read from <see cref="_inner"/> is fed to the engine, what the engine produces
/// is written to <see cref="_inner"/>. The client's PSK identity selects the key from the table.
/// One reader and one writer may run at the same time; the engine itself is used under a lock.
/// </summary>
internal sealed class PskTlsStream : Stream
{
    private const int ChunkSize = 16 * 1024 + 512;

    private readonly Stream _inner;
    private readonly IReadOnlyDictionary<string, byte[]> _keys;
    private readonly Lock _engine = new();
    private readonly SemaphoreSlim _outputGate = new(1, 1);
    private readonly byte[] _cipherIn = new byte[ChunkSize];
    private GCHandle _self;
    private nint _ssl;
    private nint _readBio;
    private nint _writeBio;
    private bool _peerClosed;
    private int _disposed;

    public unsafe PskTlsStream(Stream inner, IReadOnlyDictionary<string, byte[]> keys, SslProtocols protocols)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(keys);
        EnsureAvailable();
        _inner = inner;
        _keys = keys;
        nint ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == 0)
        {
            throw new AuthenticationException("OpenSSL: SSL_CTX_new failed: " + TakeError());
        }
        try
        {
            SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, (protocols & SslProtocols.Tls12) != 0 || protocols == SslProtocols.None ? TLS1_2_VERSION : TLS1_3_VERSION, 0);
            if (protocols != SslProtocols.None && (protocols & SslProtocols.Tls13) == 0)
            {
                SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_2_VERSION, 0);
            }
            SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
            SSL_CTX_ctrl(ctx, SSL_CTRL_SET_DH_AUTO, 1, 0);
            SSL_CTX_set_num_tickets(ctx, 0);
            // TLS 1.2: only the PSK key exchanges (plain, DHE, ECDHE; RSA-PSK needs a certificate and drops out).
            if (!SetCipherString(ctx, "PSK", tls13: false))
            {
                throw new AuthenticationException("OpenSSL: no PSK cipher suite is available: " + TakeError());
            }
            SSL_CTX_set_psk_server_callback(ctx, &PskServerCallback);
            _ssl = SSL_new(ctx);
            if (_ssl == 0)
            {
                throw new AuthenticationException("OpenSSL: SSL_new failed: " + TakeError());
            }
        }
        finally
        {
            SSL_CTX_free(ctx); // the SSL holds its own reference
        }
        _readBio = BIO_new(BIO_s_mem());
        _writeBio = BIO_new(BIO_s_mem());
        if (_readBio == 0 || _writeBio == 0)
        {
            FreeNative(); // frees the SSL and the unattached BIOs
            throw new AuthenticationException("OpenSSL: BIO_new failed");
        }
        SSL_set_bio(_ssl, _readBio, _writeBio); // the SSL owns both BIOs now
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        SSL_set_ex_data(_ssl, 0, GCHandle.ToIntPtr(_self));
        SSL_set_accept_state(_ssl);
    }

    /// <summary>The PSK identity the client authenticated with, once the handshake is done.</summary>
    public string? Identity { get; private set; }

    /// <summary>The negotiated protocol and cipher, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256".</summary>
    public string? Description { get; private set; }

    [UnmanagedCallersOnly]
    private static unsafe uint PskServerCallback(nint ssl, byte* identity, byte* psk, uint maxLength)
    {
        try
        {
            nint self = SSL_get_ex_data(ssl, 0);
            if (self == 0 || identity is null || GCHandle.FromIntPtr(self).Target is not PskTlsStream stream)
            {
                return 0;
            }
            string? name = Marshal.PtrToStringUTF8((nint)identity);
            if (name is null || !stream._keys.TryGetValue(name, out byte[]? key) || key.Length == 0 || key.Length > maxLength)
            {
                return 0;
            }
            key.CopyTo(new Span<byte>(psk, (int)maxLength));
            stream.Identity = name;
            return (uint)key.Length;
        }
        catch
        {
            return 0;
        }
    }

    /// <summary>Runs the handshake; a refused or broken handshake throws <see cref="AuthenticationException"/>.</summary>
    public async Task AuthenticateAsServerAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            int result, error;
            string? detail;
            lock (_engine)
            {
                ThrowIfDisposed();
                ERR_clear_error();
                result = SSL_do_handshake(_ssl);
                error = result == 1 ? SSL_ERROR_NONE : SSL_get_error(_ssl, result);
                detail = error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ ? null : TakeError();
            }
            // Send what the engine produced, also an alert after a failure, so the client learns why.
            await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
            if (result == 1)
            {
                lock (_engine)
                {
                    Description = $"{Marshal.PtrToStringUTF8(SSL_get_version(_ssl))} {Marshal.PtrToStringUTF8(SSL_CIPHER_get_name(SSL_get_current_cipher(_ssl)))}";
                }
                return;
            }
            if (error != SSL_ERROR_WANT_READ)
            {
                throw new AuthenticationException($"TLS-PSK handshake failed: {detail ?? $"SSL error {error}"}");
            }
            if (!await FeedInputAsync(cancellationToken).ConfigureAwait(false))
            {
                throw new AuthenticationException("TLS-PSK handshake failed: the client closed the connection");
            }
        }
    }

    /// <summary>Reads ciphertext from the connection into the engine; false at end of stream.</summary>
    private async ValueTask<bool> FeedInputAsync(CancellationToken cancellationToken)
    {
        int read = await _inner.ReadAsync(_cipherIn, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return false;
        }
        lock (_engine)
        {
            ThrowIfDisposed();
            unsafe
            {
                fixed (byte* p = _cipherIn)
                {
                    if (BIO_write(_readBio, p, read) != read)
                    {
                        throw new IOException("OpenSSL: BIO_write failed");
                    }
                }
            }
        }
        return true;
    }

    /// <summary>Writes everything the engine has produced to the connection, in order.</summary>
    private async ValueTask FlushOutputAsync(CancellationToken cancellationToken)
    {
        await _outputGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                byte[]? chunk = null;
                int length = 0;
                lock (_engine)
                {
                    if (_ssl == 0)
                    {
                        return;
                    }
                    int pending = (int)Math.Min((ulong)BIO_ctrl_pending(_writeBio), int.MaxValue);
                    if (pending == 0)
                    {
                        return;
                    }
                    chunk = ArrayPool<byte>.Shared.Rent(pending);
                    unsafe
                    {
                        fixed (byte* p = chunk)
                        {
                            length = BIO_read(_writeBio, p, pending);
                        }
                    }
                }
                try
                {
                    if (length > 0)
                    {
                        await _inner.WriteAsync(chunk.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk);
                }
                if (length <= 0)
                {
                    return;
                }
            }
        }
        finally
        {
            _outputGate.Release();
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            int result, error;
            string? detail = null;
            bool output;
            lock (_engine)
            {
                ThrowIfDisposed();
                if (_peerClosed)
                {
                    return 0;
                }
                ERR_clear_error();
                int count = Math.Min(buffer.Length, int.MaxValue);
                unsafe
                {
                    fixed (byte* p = buffer.Span)
                    {
                        result = SSL_read(_ssl, p, count);
                    }
                }
                error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(_ssl, result);
                if (error is not (SSL_ERROR_NONE or SSL_ERROR_WANT_READ or SSL_ERROR_ZERO_RETURN))
                {
                    detail = TakeError();
                }
                if (error == SSL_ERROR_ZERO_RETURN)
                {
                    _peerClosed = true;
                }
                output = BIO_ctrl_pending(_writeBio) > 0;
            }
            if (output)
            {
                // Post-handshake messages (a TLS 1.3 key update, an alert) the engine answers by itself.
                await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
            }
            switch (error)
            {
                case SSL_ERROR_NONE:
                    return result;
                case SSL_ERROR_ZERO_RETURN:
                    return 0;
                case SSL_ERROR_WANT_READ:
                    if (!await FeedInputAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return 0; // the connection ended without close_notify: end of stream all the same
                    }
                    break;
                default:
                    throw new IOException($"TLS-PSK read failed: {detail ?? $"SSL error {error}"}");
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            int written;
            lock (_engine)
            {
                ThrowIfDisposed();
                ERR_clear_error();
                int count = Math.Min(buffer.Length, 1 << 20);
                unsafe
                {
                    fixed (byte* p = buffer.Span)
                    {
                        written = SSL_write(_ssl, p, count);
                    }
                }
                if (written <= 0)
                {
                    int error = SSL_get_error(_ssl, written);
                    throw new IOException($"TLS-PSK write failed: {TakeError() ?? $"SSL error {error}"}");
                }
            }
            buffer = buffer[written..];
            await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends close_notify (best effort); the stream stays open until disposed.</summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        lock (_engine)
        {
            if (_ssl == 0)
            {
                return;
            }
            ERR_clear_error();
            SSL_shutdown(_ssl);
            ERR_clear_error();
        }
        await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
        await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_ssl == 0, this);

    private void FreeNative()
    {
        lock (_engine)
        {
            bool attached = _ssl != 0 && SSL_get_ex_data(_ssl, 0) != 0;
            if (_ssl != 0)
            {
                SSL_free(_ssl);
            }
            if (!attached)
            {
                if (_readBio != 0)
                {
                    BIO_free(_readBio);
                }
                if (_writeBio != 0)
                {
                    BIO_free(_writeBio);
                }
            }
            _ssl = _readBio = _writeBio = 0;
            if (_self.IsAllocated)
            {
                _self.Free();
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            FreeNative();
            if (disposing)
            {
                _inner.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            FreeNative();
            await _inner.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }

    ~PskTlsStream()
    {
        Dispose(false);
    }
}
