using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using NbdFast.IO.Tls;

namespace NbdFast.Negotiation;

/// <summary>
/// The server side of STARTTLS: an <see cref="SslStream"/> over the connection, TLS 1.2 or newer, and the
/// client-certificate policy: chain verified against the configured CAs, then (optionally) the client's
/// name checked against an allow-list. A refused client gets only the failed TLS handshake.
/// </summary>
internal static class TlsUpgrade
{
    public static async Task<Stream> AuthenticateAsync(Stream inner, NbdTlsOptions tls, CancellationToken cancellationToken)
    {
        if (tls.PskKeys is { } keys && tls.ServerCertificate is null)
        {
            return await AuthenticatePskAsync(inner, keys, tls, cancellationToken).ConfigureAwait(false);
        }
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificate = tls.ServerCertificate,
            EnabledSslProtocols = tls.Protocols,
            ClientCertificateRequired = tls.VerifyClientCertificates,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => IsClientAllowed(tls, certificate),
        };
        try
        {
            await ssl.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new NbdProtocolException("The TLS handshake failed: " + e.Message, e);
        }
    }

    private static async Task<Stream> AuthenticatePskAsync(Stream inner, IReadOnlyDictionary<string, byte[]> keys, NbdTlsOptions tls, CancellationToken cancellationToken)
    {
        PskTlsStream psk;
        try
        {
            psk = new PskTlsStream(inner, keys, tls.Protocols);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or PlatformNotSupportedException)
        {
            throw new NbdProtocolException("TLS-PSK is unavailable: " + e.Message, e);
        }
        try
        {
            await psk.AuthenticateAsServerAsync(cancellationToken).ConfigureAwait(false);
            return psk;
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
        {
            await psk.DisposeAsync().ConfigureAwait(false);
            throw new NbdProtocolException("The TLS handshake failed: " + e.Message, e);
        }
        catch
        {
            await psk.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Sends the TLS close-notify (best effort: the client may be gone) and closes the stream.</summary>
    public static async ValueTask CloseAsync(Stream transport)
    {
        if (transport is PskTlsStream psk)
        {
            try
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await psk.ShutdownAsync(limit.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
            {
            }
        }
        if (transport is SslStream ssl)
        {
            try
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await ssl.ShutdownAsync().WaitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
            {
            }
        }
        await transport.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>True when the client's certificate satisfies the policy (always, without client verification).</summary>
    public static bool IsClientAllowed(NbdTlsOptions tls, X509Certificate? certificate)
    {
        if (!tls.VerifyClientCertificates)
        {
            return true;
        }
        if (certificate is null || tls.ClientCertificateAuthorities is not { Count: > 0 } authorities)
        {
            return false;
        }
        using var client = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (!chain.Build(client) || !MayAuthenticateClients(client))
        {
            return false;
        }
        return tls.AllowedClients.Count == 0 || ClientNames(client).Any(name => tls.AllowedClients.Any(allowed => NameMatches(allowed, name)));
    }

    private const string ClientAuthenticationUsage = "1.3.6.1.5.5.7.3.2";

    /// <summary>A certificate that lists extended key usages must include client authentication.</summary>
    private static bool MayAuthenticateClients(X509Certificate2 client)
    {
        foreach (X509Extension extension in client.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension usage)
            {
                foreach (System.Security.Cryptography.Oid oid in usage.EnhancedKeyUsages)
                {
                    if (oid.Value == ClientAuthenticationUsage)
                    {
                        return true;
                    }
                }
                return false;
            }
        }
        return true;
    }

    /// <summary>Host names compare without case (as DNS does); distinguished names and e-mail exactly.</summary>
    private static bool NameMatches(string allowed, string name) =>
        string.Equals(allowed, name, StringComparison.Ordinal) ||
        (!name.Contains('=') && !name.Contains('@') && string.Equals(allowed, name, StringComparison.OrdinalIgnoreCase));

    private static IEnumerable<string> ClientNames(X509Certificate2 client)
    {
        yield return client.Subject;
        yield return client.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        foreach (X509Extension extension in client.Extensions)
        {
            if (extension is X509SubjectAlternativeNameExtension san)
            {
                foreach (string dns in san.EnumerateDnsNames())
                {
                    yield return dns;
                }
            }
        }
        string email = client.GetNameInfo(X509NameType.EmailName, forIssuer: false);
        if (email.Length > 0)
        {
            yield return email;
        }
    }
}
