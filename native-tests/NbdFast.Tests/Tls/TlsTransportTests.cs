using System.Diagnostics;
using System.Net.Security;
using System.Security.Authentication;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>
/// The transmission phase over TLS: every NbdChannel constructor, maximum-size payloads, TLS versions, the
/// handshake deadline during the TLS handshake, and client certificates presented by a .NET client.
/// </summary>
public sealed class TlsTransportTests
{
    private const int TestTimeout = 30_000;

    [Theory(Timeout = TestTimeout)]
    [InlineData(TlsChannelKind.Socket)]
    [InlineData(TlsChannelKind.Stream)]
    [InlineData(TlsChannelKind.SocketWithUringEngine)]
    public async Task EveryChannelConstructor_ServesWritesAndReadsOverTls(TlsChannelKind kind)
    {
        MemoryDevice device = TlsSetup.PatternDevice(300, out byte[] pattern);
        await using var server = new TlsServerHost(TlsSetup.Options(), new Dictionary<string, NbdExport> { ["disk"] = new(device, ReadOnly: false) }, kind: kind);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await tls.GoAsync("disk");

        byte[] data = new byte[256 * 1024];
        new Random(301).NextBytes(data);
        // Pipelined: eight writes, a flush, then eight reads, before reading any reply.
        for (int i = 0; i < 8; i++)
        {
            await tls.SendWriteAsync((ulong)(128 * 1024 + i * 32 * 1024), data.AsSpan(i * 32 * 1024, 32 * 1024).ToArray(), cookie: (ulong)(100 + i));
        }
        await tls.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 200);
        for (int i = 0; i < 8; i++)
        {
            await tls.SendRequestAsync(NbdCommand.Read, (ulong)(128 * 1024 + i * 32 * 1024), 32 * 1024, cookie: (ulong)(300 + i));
        }
        var got = new byte[data.Length];
        for (int i = 0; i < 17; i++)
        {
            RawReply reply = await tls.ReadReplyAsync(cookie => cookie >= 300 ? 32 * 1024 : 0);
            Assert.Equal(NbdError.None, reply.Error);
            if (reply.Cookie >= 300)
            {
                reply.Payload.CopyTo(got, (int)(reply.Cookie - 300) * 32 * 1024);
            }
        }
        Assert.True(data.AsSpan(0, 8 * 32 * 1024).SequenceEqual(got), "data read back over TLS differs");
        byte[] stored = new byte[data.Length];
        device.Read(128 * 1024, stored);
        Assert.True(data.AsSpan().SequenceEqual(stored), "the device does not hold what was written over TLS");
        await tls.SendDisconnectAsync();
        await tls.AssertClosedAsync();

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null, server.Describe());
        Assert.True(connection.TlsActive);
        Assert.Equal(pattern[0], device.ReadByteAt(0));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task MaximumPayloads_32MiBWriteAndRead_OverTls()
    {
        const int size = NbdLimits.DefaultMaxPayload;
        var device = new MemoryDevice(size);
        await using var server = new TlsServerHost(TlsSetup.Options(), new Dictionary<string, NbdExport> { ["big"] = new(device, ReadOnly: false) });
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await tls.GoAsync("big");
        byte[] data = new byte[size];
        new Random(310).NextBytes(data);

        await tls.SendWriteAsync(0, data, cookie: 1);
        Assert.Equal(NbdError.None, (await tls.ReadReplyAsync()).Error);
        await tls.SendRequestAsync(NbdCommand.Read, 0, size, cookie: 2);
        RawReply read = await tls.ReadReplyAsync(size);

        Assert.Equal(NbdError.None, read.Error);
        Assert.True(data.AsSpan().SequenceEqual(read.Payload), "32 MiB read back over TLS differs");
        await tls.SendDisconnectAsync();
        await tls.AssertClosedAsync();
        Assert.Null((await server.SingleConnectionAsync()).Error);
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(SslProtocols.Tls12, SslProtocols.Tls12 | SslProtocols.Tls13, true)]
    [InlineData(SslProtocols.Tls13, SslProtocols.Tls12 | SslProtocols.Tls13, true)]
    [InlineData(SslProtocols.Tls12, SslProtocols.Tls13, false)]
    public async Task TlsVersions(SslProtocols client, SslProtocols server, bool works)
    {
        MemoryDevice device = TlsSetup.PatternDevice(320, out byte[] pattern);
        await using var host = new TlsServerHost(TlsSetup.Options() with { Protocols = server }, new Dictionary<string, NbdExport> { ["disk"] = new(device) });
        await using RawNbdClient plain = await host.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.Ack);
        var ssl = new SslStream(plain.Stream, leaveInnerStreamOpen: true);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = client,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        if (works)
        {
            await ssl.AuthenticateAsClientAsync(options, timeout.Token);
            Assert.Equal(client, ssl.SslProtocol);
            await using var tls = new RawNbdClient(ssl, plain.Socket);
            await TlsSetup.GoReadAndDisconnectAsync(tls, "disk", pattern);
            Assert.Null((await host.SingleConnectionAsync()).Error);
        }
        else
        {
            await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(options, timeout.Token));
            Assert.IsType<NbdProtocolException>((await host.SingleConnectionAsync()).Error);
            await ssl.DisposeAsync();
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ClientStallingInTheTlsHandshake_IsCutOffByTheHandshakeDeadline()
    {
        await using var server = new TlsServerHost(TlsSetup.Options(), new Dictionary<string, NbdExport> { ["disk"] = new(new MemoryDevice(4096)) },
            negotiation: new NegotiationOptions { HandshakeTimeout = TimeSpan.FromSeconds(1) });
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.Ack);
        var stopwatch = Stopwatch.StartNew();

        // Nothing more is sent: the server waits for a ClientHello until the deadline, then hangs up.
        long? received = await plain.ReadUntilClosedAsync(TimeSpan.FromSeconds(10));

        Assert.True(received.HasValue, "the server kept a stalled TLS handshake open for 10 s: " + server.Describe());
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"closed only after {stopwatch.Elapsed}");
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<NbdProtocolException>(connection.Error);
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("alice", new[] { "alice" }, true)]
    [InlineData("alice", new string[0], true)]
    [InlineData("bob", new[] { "alice" }, false)]
    [InlineData("mallory", new string[0], false)]
    [InlineData(null, new string[0], false)]
    [InlineData("carol", new[] { "carol.example.com" }, true)]
    [InlineData("carol", new[] { "carol@example.com" }, true)]
    [InlineData("carol", new[] { "Carol Client" }, true)]
    [InlineData("carol", new[] { "CN=Carol Client" }, true)]
    [InlineData("carol", new[] { "carol" }, false)]
    public async Task DotNetClientCertificates(string? client, string[] allowed, bool accepted)
    {
        MemoryDevice device = TlsSetup.PatternDevice(330, out byte[] pattern);
        await using var server = new TlsServerHost(TlsSetup.Options(verifyClients: true, allowedClients: allowed),
            new Dictionary<string, NbdExport> { ["disk"] = new(device) });
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        using var certificate = client is null ? null : TestPki.Shared.LoadClientCertificate(client);

        if (accepted)
        {
            await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain, certificate);
            await TlsSetup.GoReadAndDisconnectAsync(tls, "disk", pattern);
            Assert.Null((await server.SingleConnectionAsync()).Error);
        }
        else
        {
            // With TLS 1.3 the client may finish its side of the handshake before the server rejects the
            // certificate, so the refusal can surface on the first NBD exchange instead.
            await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.Ack);
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await using RawNbdClient tls = await RawTls.UpgradeAsync(plain, certificate);
                await tls.GoAsync("disk");
            });
            TlsServerConnection connection = await server.SingleConnectionAsync();
            Assert.IsType<NbdProtocolException>(connection.Error);
            Assert.False(connection.Negotiated);
        }
    }
}

internal static class MemoryDeviceTestExtensions
{
    public static byte ReadByteAt(this MemoryDevice device, long offset)
    {
        byte[] one = new byte[1];
        device.Read(offset, one);
        return one[0];
    }
}
