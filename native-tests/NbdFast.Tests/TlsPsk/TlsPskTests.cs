using System.Globalization;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.IO.Tls;
using NbdFast.Tests.Support;
using NbdFast.Tests.Tls;

namespace NbdFast.Tests.TlsPsk;

/// <summary>
/// TLS with pre-shared keys (OpenSSL 3 on the server) against the GnuTLS clients: nbdinfo, python3-libnbd and
/// qemu-img, with the psk file format they share (<c>identity:hexkey</c>).
/// </summary>
public sealed class TlsPskTests
{
    private const int TestTimeout = 90_000;
    private const int Size = 4 * 1024 * 1024;

    private static string NewKeyLine(string identity) => $"{identity}:{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))}\n";

    private static TlsServerHost Host(string pskFile, MemoryDevice device, SslProtocols protocols = SslProtocols.Tls12 | SslProtocols.Tls13) =>
        new(new NbdTlsOptions { PskKeys = PskKeyFile.Load(pskFile), Protocols = protocols },
            new Dictionary<string, NbdExport> { [""] = new(device, ReadOnly: false) }, kind: TlsChannelKind.Stream);

    private static string Uri(TlsServerHost server, string user, string pskFile) =>
        $"nbds://{user}@localhost:{server.Port.ToString(CultureInfo.InvariantCulture)}/?tls-psk-file={pskFile}";

    [Theory(Timeout = TestTimeout)]
    [InlineData(SslProtocols.Tls12 | SslProtocols.Tls13)]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task Nbdinfo_ReadsSizeOverPsk(SslProtocols protocols)
    {
        using var temp = new TempDirectory();
        string psk = temp.File("keys.psk");
        await File.WriteAllTextAsync(psk, NewKeyLine("alice"));
        await using var server = Host(psk, new MemoryDevice(Size), protocols);

        ToolResult result = await ExternalTool.RunCheckedAsync("nbdinfo", ["--size", Uri(server, "alice", psk)]);

        Assert.Equal(Size.ToString(CultureInfo.InvariantCulture), result.StdOut.Trim());
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null && connection.TlsActive, server.Describe());
    }

    private const string RoundTripScript = """
        import json, random, sys, nbd
        port, psk, user = sys.argv[1], sys.argv[2], sys.argv[3]
        h = nbd.NBD()
        h.set_tls(nbd.TLS_REQUIRE)
        h.set_tls_psk_file(psk)
        h.set_tls_username(user)
        try:
            h.connect_tcp("localhost", port)
        except nbd.Error as e:
            print(json.dumps({"ok": False, "error": str(e)}))
            sys.exit(0)
        assert h.get_tls_negotiated()
        rng = random.Random(7)
        size = h.get_size()
        written = []
        for i in range(64):
            length = rng.randint(1, 256 * 1024)
            offset = rng.randint(0, size - length)
            data = rng.randbytes(length)
            h.pwrite(data, offset)
            written.append((offset, data))
        h.flush()
        model = bytearray(size)
        for offset, data in written:
            model[offset:offset + len(data)] = data
        for offset in range(0, size, 1 << 20):
            if h.pread(1 << 20, offset) != bytes(model[offset:offset + (1 << 20)]):
                raise AssertionError("read at %d differs" % offset)
        h.shutdown()
        print(json.dumps({"ok": True, "writes": len(written), "model": model.hex()[:64]}))
        """;

    [Fact(Timeout = TestTimeout)]
    public async Task PythonLibnbd_WriteReadRoundTrip()
    {
        using var temp = new TempDirectory();
        string psk = temp.File("keys.psk");
        await File.WriteAllTextAsync(psk, NewKeyLine("alice"));
        var device = new MemoryDevice(Size);
        await using var server = Host(psk, device);

        JsonElement result = await LibnbdPython.RunJsonAsync(RoundTripScript,
            server.Port.ToString(CultureInfo.InvariantCulture), psk, "alice");

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        Assert.Equal(64, result.GetProperty("writes").GetInt32());
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null && connection.TlsActive, server.Describe());
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("alice")] // the right identity with another key
    [InlineData("bob")]   // an identity the server does not know
    public async Task WrongKeyOrUnknownIdentity_IsRefused(string identity)
    {
        using var temp = new TempDirectory();
        string serverPsk = temp.File("server.psk");
        string clientPsk = temp.File("client.psk");
        await File.WriteAllTextAsync(serverPsk, NewKeyLine("alice"));
        await File.WriteAllTextAsync(clientPsk, NewKeyLine(identity));
        await using var server = Host(serverPsk, new MemoryDevice(Size));

        ToolResult nbdinfo = await ExternalTool.RunAsync("nbdinfo", ["--size", Uri(server, identity, clientPsk)]);
        nbdinfo.EnsureFailure();
        JsonElement python = await LibnbdPython.RunJsonAsync(RoundTripScript,
            server.Port.ToString(CultureInfo.InvariantCulture), clientPsk, identity);
        Assert.False(python.GetProperty("ok").GetBoolean(), python.GetRawText());

        IReadOnlyList<TlsServerConnection> connections = await server.WaitForIdleAsync();
        Assert.True(connections.Count == 2, server.Describe());
        Assert.All(connections, c => Assert.True(!c.TlsActive && c.Error is NbdProtocolException, server.Describe()));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task QemuImgInfo_WithTlsCredsPsk()
    {
        using var temp = new TempDirectory();
        string psk = temp.File("keys.psk"); // qemu reads DIR/keys.psk
        await File.WriteAllTextAsync(psk, NewKeyLine("alice"));
        await using var server = Host(psk, new MemoryDevice(Size));

        ToolResult result = await ExternalTool.RunCheckedAsync("qemu-img",
        [
            "info", "--output=json",
            "--object", $"tls-creds-psk,id=tls0,dir={temp.FullPath},username=alice,endpoint=client",
            "--image-opts", $"driver=nbd,host=localhost,port={server.Port.ToString(CultureInfo.InvariantCulture)},tls-creds=tls0",
        ]);

        using JsonDocument info = JsonDocument.Parse(result.StdOut);
        Assert.Equal(Size, info.RootElement.GetProperty("virtual-size").GetInt64());
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null && connection.TlsActive, server.Describe());
    }

    [Fact]
    public void KeyFile_ParsesLinesAndSkipsBlankOnes()
    {
        IReadOnlyDictionary<string, byte[]> keys = PskKeyFile.Parse("alice:00ff10\r\n\n  \nbob:ABCDEF\n");
        Assert.Equal(2, keys.Count);
        Assert.Equal(new byte[] { 0x00, 0xff, 0x10 }, keys["alice"]);
        Assert.Equal(new byte[] { 0xab, 0xcd, 0xef }, keys["bob"]);
    }

    [Theory]
    [InlineData("alice")]
    [InlineData(":00ff")]
    [InlineData("alice:")]
    [InlineData("alice:0g")]
    [InlineData("alice:abc")]
    [InlineData("alice:00\nalice:11")]
    [InlineData("\n\n")]
    public void KeyFile_RejectsMalformedText(string text)
    {
        var e = Assert.Throws<FormatException>(() => PskKeyFile.Parse(text, "keys.psk"));
        Assert.StartsWith("keys.psk", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Channel_NeedsACertificateOrKeys()
    {
        using var stream = new MemoryStream();
        Assert.Throws<ArgumentException>(() => new NbdChannel(stream, new NbdTlsOptions()));
        Assert.Throws<ArgumentException>(() => new NbdChannel(stream, new NbdTlsOptions { PskKeys = new Dictionary<string, byte[]>() }));
        Assert.Throws<ArgumentException>(() => new NbdChannel(stream, new NbdTlsOptions { PskKeys = new Dictionary<string, byte[]> { ["alice"] = [] } }));
        _ = new NbdChannel(stream, new NbdTlsOptions { PskKeys = new Dictionary<string, byte[]> { ["alice"] = [1, 2, 3] } });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.Throws<ArgumentException>(() => new NbdChannel(socket, null, new NbdTlsOptions()));
    }
}
