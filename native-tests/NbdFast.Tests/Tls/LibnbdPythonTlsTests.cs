using System.Globalization;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>
/// python3-libnbd (GnuTLS) against the library over TLS: 64 asynchronous requests in flight verified against a
/// model, and the client-certificate policy (chain to the configured CA, then the allow-list).
/// </summary>
public sealed class LibnbdPythonTlsTests
{
    private const int TestTimeout = 60_000;
    private const int Size = 4 * 1024 * 1024;

    private const string AioScript = """
        import json, random, sys, nbd
        port, certs, seed, initial_path, model_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        DEPTH, TOTAL = 64, 640
        h = nbd.NBD()
        h.set_tls(nbd.TLS_REQUIRE)
        h.set_tls_certificates(certs)
        h.set_tls_verify_peer(True)
        h.connect_uri("nbds://localhost:%s/disk" % port)
        assert h.get_tls_negotiated(), "TLS was not negotiated"
        size = h.get_size()
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        assert len(model) == size, (len(model), size)
        rng = random.Random(seed)
        in_flight = {}
        stats = {"writes": 0, "reads": 0, "peak_in_flight": 0, "bytes_read": 0}
        def overlaps(offset, length):
            return any(o < offset + length and offset < o + n for (_, o, n, _) in in_flight.values())
        def issue():
            while True:
                length = rng.randint(1, 64 * 1024) if rng.random() < 0.7 else rng.randint(1, 1024)
                offset = rng.randint(0, size - length)
                if not overlaps(offset, length):
                    break
            if rng.random() < 0.5:
                data = rng.randbytes(length)
                buf = nbd.Buffer.from_bytearray(bytearray(data))
                cookie = h.aio_pwrite(buf, offset)
                model[offset:offset + length] = data
                in_flight[cookie] = ("w", offset, length, buf)
                stats["writes"] += 1
            else:
                buf = nbd.Buffer(length)
                cookie = h.aio_pread(buf, offset)
                in_flight[cookie] = ("r", offset, length, buf)
                stats["reads"] += 1
        issued = 0
        while issued < TOTAL or in_flight:
            while issued < TOTAL and len(in_flight) < DEPTH:
                issue()
                issued += 1
            stats["peak_in_flight"] = max(stats["peak_in_flight"], h.aio_in_flight())
            h.poll(-1)
            for cookie in list(in_flight):
                if h.aio_command_completed(cookie):
                    kind, offset, length, buf = in_flight.pop(cookie)
                    if kind == "r":
                        got = bytes(buf.to_bytearray())
                        if got != bytes(model[offset:offset + length]):
                            raise AssertionError("aio read %d+%d differs from the model" % (offset, length))
                        stats["bytes_read"] += length
        h.flush()
        for offset in range(0, size, 1 << 20):
            if h.pread(1 << 20, offset) != bytes(model[offset:offset + (1 << 20)]):
                raise AssertionError("final read at %d differs from the model" % offset)
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(stats))
        """;

    // Connects with the client directory given and reports whether the session worked; never throws.
    private const string ConnectScript = """
        import json, sys, nbd
        port, certs = sys.argv[1], sys.argv[2]
        h = nbd.NBD()
        h.set_tls(nbd.TLS_REQUIRE)
        h.set_tls_certificates(certs)
        try:
            h.connect_uri("nbds://localhost:%s/disk" % port)
            data = h.pread(512, 0)
            tls = h.get_tls_negotiated()
            h.shutdown()
            print(json.dumps({"ok": True, "tls": tls, "first": data[:4].hex()}))
        except nbd.Error as e:
            print(json.dumps({"ok": False, "error": str(e)}))
        """;

    [Fact(Timeout = TestTimeout)]
    public async Task SixtyFourInFlight_ReadsAndWritesOverTls_MatchModel()
    {
        using var temp = new TempDirectory();
        const int seed = 4242;
        string initialPath = temp.CreateRandomFile("initial.bin", Size, seed);
        string modelPath = temp.File("model.bin");
        var device = new MemoryDevice(Size);
        await device.WriteAsync(0, await File.ReadAllBytesAsync(initialPath), WriteFlags.None);
        await using var server = new TlsServerHost(TlsSetup.Options(), new Dictionary<string, NbdExport> { ["disk"] = new(device, ReadOnly: false) });

        JsonElement stats = await LibnbdPython.RunJsonAsync(AioScript, TimeSpan.FromSeconds(50),
            server.Port.ToString(CultureInfo.InvariantCulture), TestPki.Shared.ClientNoCertDirectory,
            seed.ToString(CultureInfo.InvariantCulture), initialPath, modelPath);

        string describe = stats.GetRawText();
        Assert.True(stats.GetProperty("writes").GetInt32() > 200, describe);
        Assert.True(stats.GetProperty("reads").GetInt32() > 200, describe);
        Assert.True(stats.GetProperty("peak_in_flight").GetInt32() >= 64, describe);
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null, server.Describe());
        Assert.True(connection.TlsActive);
        await DeviceContents.AssertDeviceEqualsFileAsync(device, modelPath);
    }

    public static TheoryData<string, string[], bool> ClientPolicies => new()
    {
        // No allow-list: any certificate from the CA.
        { "alice", [], true },
        { "bob", [], true },
        { "mallory", [], false },
        { "nocert", [], false },
        // Allow-list by common name.
        { "alice", ["alice"], true },
        { "alice", ["bob"], false },
        { "bob", ["alice"], false },
        { "mallory", ["mallory"], false },
        // Allow-list by subject distinguished name.
        { "alice", ["CN=alice"], true },
    };

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(ClientPolicies))]
    public async Task ClientCertificatePolicy(string client, string[] allowed, bool accepted)
    {
        var device = new MemoryDevice(TlsSetup.DeviceSize);
        device.Write(0, [0xde, 0xad, 0xbe, 0xef]);
        await using var server = new TlsServerHost(TlsSetup.Options(verifyClients: true, allowedClients: allowed),
            new Dictionary<string, NbdExport> { ["disk"] = new(device) });

        JsonElement result = await LibnbdPython.RunJsonAsync(ConnectScript, TimeSpan.FromSeconds(30),
            server.Port.ToString(CultureInfo.InvariantCulture), TestPki.Shared.ClientDirectory(client));

        TlsServerConnection connection = await server.SingleConnectionAsync();
        string describe = result.GetRawText() + " / server: " + server.Describe();
        Assert.True(accepted == result.GetProperty("ok").GetBoolean(), describe);
        if (accepted)
        {
            Assert.Equal("deadbeef", result.GetProperty("first").GetString());
            Assert.True(result.GetProperty("tls").GetBoolean(), describe);
            Assert.True(connection.Error is null, describe);
            Assert.True(connection.TlsActive, describe);
        }
        else
        {
            Assert.True(connection.Error is NbdProtocolException { Message: var message } && message.Contains("TLS handshake", StringComparison.Ordinal), describe);
            Assert.False(connection.Negotiated, describe);
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task PlaintextLibnbdClient_AgainstForcedTls_FailsCleanly()
    {
        const string script = """
            import json, sys, nbd
            h = nbd.NBD()
            h.set_tls(nbd.TLS_DISABLE)
            try:
                h.connect_uri("nbd://localhost:%s/disk" % sys.argv[1])
                print(json.dumps({"ok": True}))
            except nbd.Error as e:
                print(json.dumps({"ok": False, "error": str(e)}))
            """;
        await using var server = new TlsServerHost(TlsSetup.Options(), new Dictionary<string, NbdExport> { ["disk"] = new(new MemoryDevice(TlsSetup.DeviceSize)) });

        JsonElement result = await LibnbdPython.RunJsonAsync(script, TimeSpan.FromSeconds(30), server.Port.ToString(CultureInfo.InvariantCulture));

        Assert.False(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        await server.WaitForIdleAsync();
        Assert.All(server.Connections, c => Assert.False(c.Negotiated));
    }
}
