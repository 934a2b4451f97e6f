using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using NbdFast.Devices;

namespace NbdFast.Fuzzing;

/// <summary>Which TLS policy the server of a fuzzed handshake runs.</summary>
public enum FuzzTls
{
    None,
    Required,
    Optional,
}

/// <summary>How a handshake session ended.</summary>
public enum HandshakeEnd
{
    /// <summary>ConnectAsync returned a connection (EXPORT_NAME or a successful GO).</summary>
    ExportChosen,
    /// <summary>ConnectAsync threw <see cref="ClientRequestedAbortException"/>.</summary>
    Aborted,
    /// <summary>ConnectAsync threw <see cref="NbdProtocolException"/> and closed the connection.</summary>
    Closed,
}

/// <summary>The server side of a fuzzed handshake: TLS policy, whether exports resolve and list, and the limits.</summary>
public sealed record HandshakeConfig(FuzzTls Tls, bool WithResolver, bool WithOffer, bool SmallLimits)
{
    /// <summary>The configuration a fuzz input's first byte selects.</summary>
    public static HandshakeConfig FromByte(byte b) => new(
        (b & 3) switch { 1 => FuzzTls.Required, 2 => FuzzTls.Optional, _ => FuzzTls.None },
        (b & 4) == 0,
        (b & 8) == 0,
        (b & 16) != 0);

    /// <summary>The inverse of <see cref="FromByte"/>.</summary>
    public byte ToByte() => (byte)((int)Tls | (WithResolver ? 0 : 4) | (WithOffer ? 0 : 8) | (SmallLimits ? 16 : 0));

    public NegotiationOptions Limits => SmallLimits
        ? new NegotiationOptions { MaxOptionLength = 256, MaxOptions = 8, HandshakeTimeout = Timeout.InfiniteTimeSpan }
        : new NegotiationOptions { HandshakeTimeout = Timeout.InfiniteTimeSpan };
}

/// <summary>What a handshake session produced.</summary>
public sealed record HandshakeOutcome(HandshakeEnd End, byte[] ServerOutput, bool ConnectionClosed, string? ExportName);

/// <summary>
/// Runs <see cref="NbdServer.ConnectAsync"/> against a scripted client and reports how it ended. Only the
/// documented exceptions are caught; anything else escapes, which a fuzzer counts as a crash.
/// </summary>
public static class HandshakeSession
{
    /// <summary>Exports the resolver knows: "a" (and the default name ""), writable; "b", read-only and TLS-only.</summary>
    public static readonly IReadOnlyList<string> Offer = ["a", "b"];

    private static readonly Lazy<X509Certificate2> Certificate = new(MakeCertificate);

    public static HandshakeOutcome Run(HandshakeConfig config, ReadOnlyMemory<byte> clientScript) =>
        RunAsync(config, clientScript).GetAwaiter().GetResult();

    public static async Task<HandshakeOutcome> RunAsync(HandshakeConfig config, ReadOnlyMemory<byte> clientScript)
    {
        var stream = new ScriptedStream(clientScript);
        NbdTlsOptions? tls = config.Tls == FuzzTls.None ? null : new NbdTlsOptions
        {
            ServerCertificate = Certificate.Value,
            Mode = config.Tls == FuzzTls.Required ? NbdTlsMode.Required : NbdTlsMode.Optional,
        };
        var channel = new NbdChannel(stream, tls);
        NbdExportResolver? resolver = config.WithResolver ? Resolver() : null;
        NbdConnection connection;
        string name;
        try
        {
            (name, connection) = await NbdServer.ConnectAsync(channel, config.WithOffer ? Offer : null, resolver, config.Limits).ConfigureAwait(false);
        }
        catch (ClientRequestedAbortException)
        {
            return new HandshakeOutcome(HandshakeEnd.Aborted, stream.Written.ToArray(), stream.Disposed, null);
        }
        catch (NbdProtocolException)
        {
            return new HandshakeOutcome(HandshakeEnd.Closed, stream.Written.ToArray(), stream.Disposed, null);
        }
        // The client hangs up after choosing: serving sends any reply still owed (GO without a resolver,
        // EXPORT_NAME) and then sees end of stream.
        stream.EndInput();
        await using (connection.ConfigureAwait(false))
        {
            if (connection.Export is not null)
            {
                await connection.ServeAsync().ConfigureAwait(false);
            }
            else
            {
                await connection.ServeAsync(new MemoryDevice(1 << 20), readOnly: true).ConfigureAwait(false);
            }
        }
        return new HandshakeOutcome(HandshakeEnd.ExportChosen, stream.Written.ToArray(), stream.Disposed, name);
    }

    private static NbdExportResolver Resolver()
    {
        var a = new NbdExport(new MemoryDevice(1 << 20), ReadOnly: false, "export a");
        var b = new NbdExport(new MemoryDevice(2 << 20), ReadOnly: true, "export b", TlsOnly: true);
        return (name, _) => ValueTask.FromResult(name switch
        {
            "a" or "" => a,
            "b" => b,
            _ => (NbdExport?)null,
        });
    }

    private static X509Certificate2 MakeCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }
}
