using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace NbdFast;

/// <summary>How a server with TLS credentials treats clients that have not started TLS.</summary>
public enum NbdTlsMode
{
    /// <summary>FORCEDTLS: before STARTTLS only STARTTLS and ABORT are honoured (the default with credentials).</summary>
    Required,

    /// <summary>SELECTIVETLS: exports marked <see cref="NbdExport.TlsOnly"/> need TLS; the others are served in clear too.</summary>
    Optional,
}

/// <summary>TLS credentials and policy for a channel. A channel that carries them negotiates TLS (STARTTLS).</summary>
public sealed record NbdTlsOptions
{
    /// <summary>The server's certificate, with its private key. Either this or <see cref="PskKeys"/> must be given.</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>
    /// TLS-PSK instead of a certificate: the pre-shared keys by client identity, as in the nbdkit/qemu psk file
    /// (see <see cref="IO.Tls.PskKeyFile"/>). Needs OpenSSL 3 (libssl.so.3) at run time.
    /// </summary>
    public IReadOnlyDictionary<string, byte[]>? PskKeys { get; init; }

    /// <summary>FORCEDTLS (default) or SELECTIVETLS.</summary>
    public NbdTlsMode Mode { get; init; } = NbdTlsMode.Required;

    /// <summary>Ask every client for a certificate and verify its chain against <see cref="ClientCertificateAuthorities"/>.</summary>
    public bool VerifyClientCertificates { get; init; }

    /// <summary>The CAs client certificates must chain to (required with <see cref="VerifyClientCertificates"/>).</summary>
    public X509Certificate2Collection? ClientCertificateAuthorities { get; init; }

    /// <summary>
    /// When not empty, a verified client is also authorized by name: its subject distinguished name, its
    /// common name, or one of its DNS/e-mail subject alternative names must be in this list.
    /// </summary>
    public IReadOnlyList<string> AllowedClients { get; init; } = [];

    /// <summary>TLS versions accepted: 1.2 and 1.3 by default, never older.</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>Throws <see cref="ArgumentException"/> unless exactly one kind of credential is usable.</summary>
    internal void Validate(string parameterName)
    {
        bool psk = PskKeys is not null;
        if (ServerCertificate is null && !psk)
        {
            throw new ArgumentException("TLS options need a ServerCertificate or PskKeys.", parameterName);
        }
        if (ServerCertificate is not null && psk)
        {
            throw new ArgumentException("TLS options take a ServerCertificate or PskKeys, not both.", parameterName);
        }
        if (psk)
        {
            if (PskKeys!.Count == 0 || PskKeys.Any(pair => string.IsNullOrEmpty(pair.Key) || pair.Value is not { Length: > 0 and <= IO.Tls.OpenSslNative.PSK_MAX_PSK_LEN }))
            {
                throw new ArgumentException($"PskKeys must hold at least one identity, each with a key of 1 to {IO.Tls.OpenSslNative.PSK_MAX_PSK_LEN} bytes.", parameterName);
            }
            if (VerifyClientCertificates)
            {
                throw new ArgumentException("VerifyClientCertificates cannot be combined with PskKeys.", parameterName);
            }
            if (IO.Tls.OpenSslNative.UnavailableReason is string reason)
            {
                throw new ArgumentException(reason, parameterName);
            }
        }
    }
}
