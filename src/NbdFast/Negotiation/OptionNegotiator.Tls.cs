using NbdFast.Protocol;

namespace NbdFast.Negotiation;

/// <summary>STARTTLS: the clear-text ACK, the TLS handshake, and forgetting everything negotiated before it.</summary>
internal sealed partial class OptionNegotiator
{
    /// <summary>The stream transmission continues on: the TLS stream once STARTTLS succeeded.</summary>
    public Stream Transport => _io.Inner;

    /// <summary>True once STARTTLS succeeded.</summary>
    public bool TlsActive => _tlsActive;

    private async ValueTask HandleStartTlsAsync(uint option, int length, CancellationToken cancellationToken)
    {
        if (length != 0)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "STARTTLS must not carry data");
            return;
        }
        if (_tls is null)
        {
            WriteError(option, NbdOptionReplyType.ErrPolicy, "TLS is not configured on this server");
            return;
        }
        if (_tlsActive)
        {
            WriteError(option, NbdOptionReplyType.ErrInvalid, "TLS is already active");
            return;
        }
        WriteAck(option);
        await _io.FlushAsync(cancellationToken).ConfigureAwait(false);
        // Nothing read past the STARTTLS option is buffered here (every read is exact), so plaintext a client
        // pipelined behind it can only reach the TLS layer, which rejects it.
        _io.Inner = await TlsUpgrade.AuthenticateAsync(_io.Inner, _tls, cancellationToken).ConfigureAwait(false);
        _tlsActive = true;
        _features.ResetAfterTls();
    }
}
