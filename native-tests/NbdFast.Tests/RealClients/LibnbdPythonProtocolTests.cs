using System.Text;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// python3-libnbd with its client-side checks relaxed (strict mode off, old handshakes, TLS), so requests a
/// careful client never sends reach the server; the server must answer each and keep the session usable.
/// </summary>
public sealed class LibnbdPythonProtocolTests
{
    private const int TestTimeout = 120_000;

    // Each probe prints "name errnum" (0 on success); after each one, a read proves the session still works.
    private const string RelaxedScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(sys.argv[1])
        size = h.get_size()
        h.set_strict_mode(0)
        out = {}
        def probe(name, fn):
            try:
                fn()
                out[name] = 0
            except nbd.Error as e:
                out[name] = e.errnum if e.errnum is not None else -1
            # The session must survive every error above.
            out[name + "_then_read"] = h.pread(4, 0).hex()
        probe("read_past_end", lambda: h.pread(4096, size - 1024))
        probe("read_offset_past_end", lambda: h.pread(1, size + 4096))
        probe("write_past_end", lambda: h.pwrite(b"\x01" * 4096, size - 1024))
        probe("zero_past_end", lambda: h.zero(8192, size - 4096))
        probe("trim_past_end", lambda: h.trim(8192, size - 4096))
        probe("cache_past_end", lambda: h.cache(8192, size - 4096))
        probe("read_over_max_payload", lambda: h.pread(40 << 20, 0))
        probe("write_over_max_payload", lambda: h.pwrite(b"\x02" * (40 << 20), 0))
        probe("write_with_no_hole_flag", lambda: h.pwrite(b"\x03" * 512, 0, nbd.CMD_FLAG_NO_HOLE))
        probe("read_with_fua_flag", lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA))
        probe("write_with_unknown_flag", lambda: h.pwrite(b"\x04" * 512, 0, 0x8000))
        probe("block_status_zero_length", lambda: h.block_status(0, 0, lambda *a: 0))
        probe("cache", lambda: h.cache(1 << 20, 0))
        probe("fast_zero", lambda: h.zero(65536, 1 << 20, nbd.CMD_FLAG_FAST_ZERO))
        extents = []
        probe("block_status_req_one", lambda: h.block_status(size, 0, lambda ctx, off, ents, err: extents.extend(ents) or 0, nbd.CMD_FLAG_REQ_ONE))
        out["req_one_extents"] = extents
        h.shutdown()
        print(json.dumps(out))
        """;

    // Zero-length requests are legal on the wire; the spec leaves the answer to the server but not a hang-up.
    private const string ZeroLengthScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.set_request_structured_replies(sys.argv[2] == "1")
        h.connect_uri(sys.argv[1])
        h.set_strict_mode(0)
        out = {}
        for name, fn in [("read", lambda: h.pread(0, 0)), ("write", lambda: h.pwrite(b"", 0)),
                         ("trim", lambda: h.trim(0, 0)), ("zero", lambda: h.zero(0, 0)), ("cache", lambda: h.cache(0, 0))]:
            try:
                fn()
                out[name] = 0
            except nbd.Error as e:
                out[name] = e.errnum if e.errnum is not None else -1
            out[name + "_then_read"] = h.pread(4, 0).hex()
        h.shutdown()
        print(json.dumps(out))
        """;

    private const string HandshakeScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.set_handshake_flags(int(sys.argv[2]))
        h.connect_uri(sys.argv[1])
        out = {"protocol": h.get_protocol(), "size": h.get_size(), "read_only": h.is_read_only(),
               "structured": h.get_structured_replies_negotiated(), "data": h.pread(8, 0).hex()}
        h.shutdown()
        print(json.dumps(out))
        """;

    private const string TlsScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.set_tls(int(sys.argv[2]))
        out = {}
        try:
            h.connect_uri(sys.argv[1])
            out["connected"] = True
            out["tls"] = h.get_tls_negotiated()
            out["data"] = h.pread(4, 0).hex()
            h.shutdown()
        except nbd.Error as e:
            out["connected"] = False
            out["error"] = e.string
        print(json.dumps(out))
        """;

    private const int EINVAL = 22, ENOSPC = 28, EOVERFLOW = 75;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task RelaxedClient_BadRequestsGetErrorsAndSessionSurvives(Transport transport)
    {
        // Larger than the 32 MiB maximum payload, so an oversized read is in range and only too long.
        var device = new MemoryDevice(64 * 1024 * 1024);
        await device.WriteAsync(0, "\x5a\x5b\x5c\x5d"u8.ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        JsonElement output = await RunJsonAsync(RelaxedScript, server.Uri);

        string describe = output.GetRawText();
        foreach (JsonProperty property in output.EnumerateObject().Where(p => p.Name.EndsWith("_then_read", StringComparison.Ordinal)))
        {
            Assert.True(property.Value.GetString() is "5a5b5c5d", $"{property.Name}: {describe}");
        }
        Assert.True(EINVAL == output.GetProperty("read_past_end").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("read_offset_past_end").GetInt32(), describe);
        Assert.True(ENOSPC == output.GetProperty("write_past_end").GetInt32(), describe);
        Assert.True(ENOSPC == output.GetProperty("zero_past_end").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("trim_past_end").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("cache_past_end").GetInt32(), describe);
        Assert.True(EOVERFLOW == output.GetProperty("read_over_max_payload").GetInt32(), describe);
        Assert.True(EOVERFLOW == output.GetProperty("write_over_max_payload").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("write_with_no_hole_flag").GetInt32(), describe);
        // The spec lets FUA accompany any command once NBD_FLAG_SEND_FUA is advertised, reads included.
        Assert.True(0 == output.GetProperty("read_with_fua_flag").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("write_with_unknown_flag").GetInt32(), describe);
        Assert.True(EINVAL == output.GetProperty("block_status_zero_length").GetInt32(), describe);
        Assert.True(0 == output.GetProperty("cache").GetInt32(), describe);
        Assert.True(0 == output.GetProperty("fast_zero").GetInt32(), describe);
        Assert.True(0 == output.GetProperty("block_status_req_one").GetInt32(), describe);
        // REQ_ONE: a single (length, flags) pair, here the allocated first chunk.
        Assert.Equal("[65536, 0]", output.GetProperty("req_one_extents").GetRawText());

        await server.AssertNoErrorsAsync();
        // None of the refused writes touched the device.
        byte[] contents = await DeviceContents.ReadAllAsync(device);
        Assert.Equal("\x5a\x5b\x5c\x5d"u8.ToArray(), contents.AsSpan(0, 4).ToArray());
        Assert.True(contents.AsSpan(4).IndexOfAnyExcept((byte)0) < 0, "a refused request changed the device");
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(true, Transport.Streams)]
    [InlineData(false, Transport.Streams)]
    [InlineData(true, Transport.Uring)]
    [InlineData(false, Transport.Uring)]
    public async Task ZeroLengthRequests_AnsweredWithoutEndingSession(bool structuredReplies, Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(0, "\x01\x02\x03\x04"u8.ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        JsonElement output = await RunJsonAsync(ZeroLengthScript, server.Uri, structuredReplies ? "1" : "0");

        foreach (string name in new[] { "read", "write", "trim", "zero", "cache" })
        {
            Assert.True(output.GetProperty(name + "_then_read").GetString() == "01020304", $"{name}: {output.GetRawText()}");
        }
        await server.AssertNoErrorsAsync();
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(0, false)]            // oldest newstyle client: EXPORT_NAME, 124 bytes of zero padding
    [InlineData(2, false)]            // NO_ZEROES without FIXED_NEWSTYLE: EXPORT_NAME, no padding
    [InlineData(0, true)]             // the same through a resolver
    [InlineData(2, true)]
    [InlineData(1, true)]             // FIXED_NEWSTYLE without NO_ZEROES: GO
    public async Task OlderHandshakes_ReachTheExport(int handshakeFlags, bool useResolver)
    {
        var device = new MemoryDevice(2 * 1024 * 1024 + 4096);
        await device.WriteAsync(0, "handshk!"u8.ToArray(), WriteFlags.None);
        InProcessServerOptions options = useResolver
            ? new InProcessServerOptions { Resolver = (name, _) => ValueTask.FromResult(name == "disk" ? new NbdExport(device) : null), ExportName = "disk" }
            : new InProcessServerOptions { Device = device, ExportName = "disk" };
        await using var server = InProcessServer.Start(options);

        JsonElement output = await RunJsonAsync(HandshakeScript, server.Uri, handshakeFlags.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal((handshakeFlags & 1) != 0 ? "newstyle-fixed" : "newstyle", output.GetProperty("protocol").GetString());
        Assert.Equal(device.Size, output.GetProperty("size").GetInt64());
        Assert.True(output.GetProperty("read_only").GetBoolean());
        Assert.Equal((handshakeFlags & 1) != 0, output.GetProperty("structured").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower("handshk!"u8), output.GetProperty("data").GetString());
        ServerConnection connection = Assert.Single(await server.AssertNoErrorsAsync());
        Assert.Equal("disk", connection.ExportName);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ExportNameHandshake_UnknownName_ClosesConnection()
    {
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Resolver = (name, _) => ValueTask.FromResult(name == "disk" ? new NbdExport(device) : null),
            ExportName = "missing",
        });

        ToolResult result = await ExternalTool.RunPythonAsync(HandshakeScript, [server.Uri, "0"]);

        result.EnsureFailure();
        await server.WaitForIdleAsync();
        ServerConnection connection = Assert.Single(server.Connections);
        Assert.IsType<NbdProtocolException>(connection.Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Tls_AllowFallsBackToPlain_RequireFails()
    {
        var device = new MemoryDevice(1024 * 1024);
        await device.WriteAsync(0, new byte[] { 0xaa, 0xbb, 0xcc, 0xdd }, WriteFlags.None);
        await using var server = InProcessServer.Start(device);

        JsonElement allow = await RunJsonAsync(TlsScript, server.Uri, "1");
        JsonElement require = await RunJsonAsync(TlsScript, server.Uri, "2");

        Assert.True(allow.GetProperty("connected").GetBoolean(), allow.GetRawText());
        Assert.False(allow.GetProperty("tls").GetBoolean());
        Assert.Equal("aabbccdd", allow.GetProperty("data").GetString());
        Assert.False(require.GetProperty("connected").GetBoolean(), require.GetRawText());
        await server.WaitForIdleAsync();
        IReadOnlyList<ServerConnection> connections = server.Connections;
        Assert.Equal(2, connections.Count);
        Assert.Null(connections[0].Error);
        // The TLS-only client gives up after STARTTLS is refused; it may or may not say goodbye with NBD_OPT_ABORT.
        Assert.True(connections[1].Error is ClientRequestedAbortException or NbdProtocolException, server.Describe());
        Assert.False(connections[1].Negotiated);
    }

    private static async Task<JsonElement> RunJsonAsync(string script, params string[] arguments)
    {
        ToolResult result = await ExternalTool.RunPythonAsync(script, arguments, TimeSpan.FromSeconds(90));
        result.EnsureSuccess();
        string line = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        using JsonDocument document = JsonDocument.Parse(Encoding.UTF8.GetBytes(line));
        return document.RootElement.Clone();
    }
}
