using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace NbdFast.Cli;

/// <summary>Builds the TLS options from a certificates directory laid out as nbdkit and qemu expect.</summary>
internal static class TlsLoader
{
    private static NbdTlsOptions LoadPsk(CliSettings settings, string file)
    {
        if (NbdFast.IO.Tls.OpenSslNative.UnavailableReason is string reason)
        {
            throw new UsageException($"--tls-psk: {reason}");
        }
        IReadOnlyDictionary<string, byte[]> keys;
        try
        {
            keys = NbdFast.IO.Tls.PskKeyFile.Load(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--tls-psk: cannot read {file}: {e.Message}");
        }
        catch (FormatException e)
        {
            throw new UsageException($"--tls-psk: {e.Message}");
        }
        return new NbdTlsOptions
        {
            PskKeys = keys,
            Mode = settings.Tls == TlsSetting.On ? NbdTlsMode.Optional : NbdTlsMode.Required,
        };
    }

    /// <summary>Loads the credentials; throws <see cref="UsageException"/> with one clear line when something is missing or unreadable.</summary>
    public static NbdTlsOptions? Load(CliSettings settings)
    {
        if (settings.Tls == TlsSetting.Off)
        {
            return null;
        }
        if (settings.TlsPsk is string pskFile)
        {
            return LoadPsk(settings, pskFile);
        }
        if (settings.TlsCertificates is not string directory)
        {
            return null;
        }
        string certificate = Path.Combine(directory, "server-cert.pem");
        string key = Path.Combine(directory, "server-key.pem");
        string authority = Path.Combine(directory, "ca-cert.pem");
        X509Certificate2 server;
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certificate, key);
            // Re-import so the private key is usable by the TLS stack on every platform.
            server = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new UsageException($"--tls-certificates: cannot load {certificate} with {key}: {e.Message}");
        }
        X509Certificate2Collection? authorities = null;
        if (settings.TlsVerifyPeer)
        {
            try
            {
                authorities = new X509Certificate2Collection();
                authorities.ImportFromPemFile(authority);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
            {
                throw new UsageException($"--tls-verify-peer: cannot load {authority}: {e.Message}");
            }
            if (authorities.Count == 0)
            {
                throw new UsageException($"--tls-verify-peer: {authority} holds no certificate");
            }
        }
        return new NbdTlsOptions
        {
            ServerCertificate = server,
            Mode = settings.Tls == TlsSetting.On ? NbdTlsMode.Optional : NbdTlsMode.Required,
            VerifyClientCertificates = settings.TlsVerifyPeer,
            ClientCertificateAuthorities = authorities,
            AllowedClients = settings.TlsAllowClients,
        };
    }
}
