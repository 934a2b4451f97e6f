using System.Text;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>python3-libnbd scripts (run with Debian's /usr/bin/python3) against the library on a real socket.</summary>
public sealed class LibnbdPythonTests
{
    private const int TestTimeout = 180_000;
    private const int Errno_EPERM = 1;
    private const int Errno_ENOENT = 2;

    private const string OptModeScript = """
        import json, sys, nbd
        uri = sys.argv[1]
        out = {}
        h = nbd.NBD()
        h.set_opt_mode(True)
        h.set_full_info(True)
        h.connect_uri(uri)
        out["negotiating"] = h.aio_is_negotiating()
        names = []
        def collect(name, description):
            names.append([name, description])
            return 0
        out["list_count"] = h.opt_list(collect)
        out["list"] = names
        h.set_export_name("a")
        h.opt_info()
        out["a_size"] = h.get_size()
        out["a_read_only"] = h.is_read_only()
        out["a_description"] = h.get_export_description()
        h.set_export_name("b")
        h.opt_info()
        out["b_size"] = h.get_size()
        out["b_read_only"] = h.is_read_only()
        h.set_export_name("no-such-export")
        try:
            h.opt_info()
            out["unknown"] = "no error"
        except nbd.Error as e:
            out["unknown"] = e.string
            out["unknown_errno"] = e.errnum
        out["still_negotiating"] = h.aio_is_negotiating()
        h.set_export_name("b")
        h.opt_go()
        out["go_size"] = h.get_size()
        out["go_read_only"] = h.is_read_only()
        out["go_data"] = h.pread(4, 0).hex()
        h.shutdown()
        print(json.dumps(out))
        """;

    private const string AbortScript = """
        import json, sys, nbd
        h = nbd.NBD()
        h.set_opt_mode(True)
        h.connect_uri(sys.argv[1])
        h.opt_abort()
        print(json.dumps({"closed": h.aio_is_closed()}))
        """;

    // Random pwrite/zero/trim/flush/pread at random offsets and lengths (1 byte .. 1 MiB) against a model of
    // the whole device, loaded from the file the test wrote before serving. Every write is read back at once,
    // the whole device is compared at the end, and the final model is saved for the test to check the device.
    private const string RoundTripScript = """
        import json, random, sys, nbd
        uri, seed, structured, initial_path, model_path = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
        h = nbd.NBD()
        h.set_request_structured_replies(structured)
        h.connect_uri(uri)
        assert h.get_structured_replies_negotiated() == structured, "structured replies: %r" % h.get_structured_replies_negotiated()
        assert not h.is_read_only()
        assert h.can_flush() and h.can_fua() and h.can_zero() and h.can_trim()
        size = h.get_size()
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        assert len(model) == size, (len(model), size)
        rng = random.Random(seed)
        stats = {"write": 0, "zero": 0, "trim": 0, "flush": 0, "read": 0, "bytes_written": 0, "bytes_read": 0}
        stats.update({"data_chunks": 0, "hole_chunks": 0, "df_reads": 0})
        def check(offset, length, df=False):
            if structured and (df or rng.random() < 0.5):
                # pread_structured shows the chunks: with DF the reply must come as exactly one chunk.
                chunks = []
                def chunk(subbuf, chunk_offset, status, error):
                    chunks.append((chunk_offset, len(subbuf), status))
                    return 0
                got = h.pread_structured(length, offset, chunk, nbd.CMD_FLAG_DF if df else 0)
                assert all(status in (nbd.READ_DATA, nbd.READ_HOLE) for (_, _, status) in chunks), chunks
                assert sum(n for (_, n, _) in chunks) == length, (offset, length, chunks)
                if df:
                    assert len(chunks) == 1, "DF read %d+%d came in %d chunks" % (offset, length, len(chunks))
                    stats["df_reads"] += 1
                stats["data_chunks"] += sum(1 for c in chunks if c[2] == nbd.READ_DATA)
                stats["hole_chunks"] += sum(1 for c in chunks if c[2] == nbd.READ_HOLE)
            else:
                got = h.pread(length, offset)
            want = bytes(model[offset:offset + length])
            if got != want:
                bad = next(i for i in range(length) if got[i] != want[i])
                raise AssertionError("mismatch at %d (read %d+%d): got %02x want %02x" % (offset + bad, offset, length, got[bad], want[bad]))
            stats["bytes_read"] += length
        for i in range(200):
            length = rng.randint(1, 1 << 20) if rng.random() < 0.5 else rng.randint(1, 4096)
            offset = rng.randint(0, size - length)
            op = rng.random()
            if op < 0.55:
                data = rng.randbytes(length)
                h.pwrite(data, offset, nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0)
                model[offset:offset + length] = data
                stats["write"] += 1
                stats["bytes_written"] += length
                check(offset, length)
            elif op < 0.7:
                h.zero(length, offset, rng.choice([0, nbd.CMD_FLAG_NO_HOLE, nbd.CMD_FLAG_FUA, nbd.CMD_FLAG_FAST_ZERO]))
                model[offset:offset + length] = bytes(length)
                stats["zero"] += 1
                check(offset, length, df=rng.random() < 0.5)
            elif op < 0.78:
                # Trimmed contents are unspecified: trim, then overwrite the range so the model stays exact.
                h.trim(length, offset)
                data = rng.randbytes(length)
                h.pwrite(data, offset)
                model[offset:offset + length] = data
                stats["trim"] += 1
                check(offset, length)
            elif op < 0.85:
                h.flush()
                stats["flush"] += 1
            else:
                check(offset, length, df=rng.random() < 0.5)
                stats["read"] += 1
        h.flush()
        step = 4 << 20
        for offset in range(0, size, step):
            check(offset, min(step, size - offset))
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(stats))
        """;

    // Many requests in flight at once on one connection: the server may complete them in any order.
    private const string PipelinedScript = """
        import json, sys, nbd
        uri = sys.argv[1]
        h = nbd.NBD()
        h.connect_uri(uri)
        size = h.get_size()
        block = 64 * 1024
        count = size // block
        def pattern(i):
            return bytes([(i * 7 + j) & 0xff for j in range(251)]) * (block // 251) + bytes([i & 0xff]) * (block % 251)
        cookies = [h.aio_pwrite(pattern(i), i * block) for i in range(count)]
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c in cookies:
            assert h.aio_command_completed(c)
        bufs = [nbd.Buffer(block) for _ in range(count)]
        cookies = [h.aio_pread(bufs[i], i * block) for i in range(count)]
        peak = h.aio_in_flight()
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for i, c in enumerate(cookies):
            assert h.aio_command_completed(c)
            assert bufs[i].to_bytearray() == pattern(i), "block %d" % i
        h.flush()
        h.shutdown()
        print(json.dumps({"blocks": count, "peak_in_flight": peak}))
        """;

    private const string ReadOnlyScript = """
        import json, sys, nbd
        out = {}
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        out["read_only"] = h.is_read_only()
        out["can_trim"] = h.can_trim()
        out["can_zero"] = h.can_zero()
        out["data"] = h.pread(8, 0).hex()
        # libnbd refuses the write itself while strict mode checks commands...
        try:
            h.pwrite(b"x" * 512, 0)
            out["client_side"] = "no error"
        except nbd.Error as e:
            out["client_side_errno"] = e.errnum
        out["data_after_client_refusal"] = h.pread(8, 0).hex()
        # ...so turn that off to make it reach the server.
        h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_COMMANDS)
        try:
            h.pwrite(b"x" * 512, 0)
            out["server_side"] = "no error"
        except nbd.Error as e:
            out["server_side_errno"] = e.errnum
            out["server_side"] = e.string
        try:
            h.pread(8, 0)
            out["after"] = "read succeeded"
        except nbd.Error as e:
            out["after"] = e.string
        print(json.dumps(out))
        """;

    [Fact(Timeout = TestTimeout)]
    public async Task OptMode_ListInfoUnknownThenGo()
    {
        var a = new MemoryDevice(1024 * 1024);
        var b = new MemoryDevice(3 * 1024 * 1024);
        await b.WriteAsync(0, "NBD!"u8.ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Offer = ["a", "b"],
            Resolver = (name, _) => ValueTask.FromResult(name switch
            {
                "a" => new NbdExport(a, Description: "export a"),
                "b" => new NbdExport(b, ReadOnly: false, Description: "export b"),
                _ => null,
            }),
        });

        JsonElement output = await RunJsonAsync(OptModeScript, server.Uri);

        Assert.True(output.GetProperty("negotiating").GetBoolean());
        Assert.Equal(2, output.GetProperty("list_count").GetInt32());
        Assert.Equal("""[["a", "export a"], ["b", "export b"]]""", output.GetProperty("list").GetRawText());
        Assert.Equal(a.Size, output.GetProperty("a_size").GetInt64());
        Assert.True(output.GetProperty("a_read_only").GetBoolean());
        Assert.Equal("export a", output.GetProperty("a_description").GetString());
        Assert.Equal(b.Size, output.GetProperty("b_size").GetInt64());
        Assert.False(output.GetProperty("b_read_only").GetBoolean());
        // NBD_REP_ERR_UNKNOWN, which libnbd reports as ENOENT.
        Assert.Contains("server replied with error", output.GetProperty("unknown").GetString(), StringComparison.Ordinal);
        Assert.Equal(Errno_ENOENT, output.GetProperty("unknown_errno").GetInt32());
        Assert.True(output.GetProperty("still_negotiating").GetBoolean());
        Assert.Equal(b.Size, output.GetProperty("go_size").GetInt64());
        Assert.False(output.GetProperty("go_read_only").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower("NBD!"u8), output.GetProperty("go_data").GetString());

        IReadOnlyList<ServerConnection> connections = await server.AssertNoErrorsAsync();
        ServerConnection connection = Assert.Single(connections);
        Assert.Equal("b", connection.ExportName);
        Assert.True(connection.StructuredReplies);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task OptAbort_ServerSeesClientRequestedAbort()
    {
        await using var server = InProcessServer.Start(new MemoryDevice(1024 * 1024), unixSocket: true);

        JsonElement output = await RunJsonAsync(AbortScript, server.Uri);

        Assert.True(output.GetProperty("closed").GetBoolean());
        await server.WaitForIdleAsync();
        ServerConnection connection = Assert.Single(server.Connections);
        Assert.IsType<ClientRequestedAbortException>(connection.Error);
        Assert.False(connection.Negotiated);
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(true, false, Transport.Streams)]
    [InlineData(false, false, Transport.Streams)]
    [InlineData(true, true, Transport.Streams)]
    [InlineData(true, false, Transport.Uring)]
    [InlineData(false, false, Transport.Uring)]
    [InlineData(true, true, Transport.Uring)]
    public async Task RandomRoundTrips_MatchModelAndDevice(bool structuredReplies, bool unixSocket, Transport transport)
    {
        const int Size = 16 * 1024 * 1024;
        int seed = (structuredReplies ? 1 : 0) + (unixSocket ? 2 : 0) + (transport == Transport.Uring ? 4 : 0) + 4242;
        var device = new MemoryDevice(Size);
        byte[] initial = new byte[Size];
        new Random(seed).NextBytes(initial.AsSpan(0, Size / 2)); // the upper half stays an unwritten hole
        await device.WriteAsync(0, initial.AsMemory(0, Size / 2), WriteFlags.None);
        using var temp = new TempDirectory();
        string initialPath = temp.File("initial.bin");
        string modelPath = temp.File("model.bin");
        await File.WriteAllBytesAsync(initialPath, initial);
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);

        JsonElement stats = await RunJsonAsync(RoundTripScript, server.Uri, seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            structuredReplies ? "1" : "0", initialPath, modelPath);

        Assert.True(stats.GetProperty("write").GetInt32() > 50, stats.GetRawText());
        Assert.True(stats.GetProperty("zero").GetInt32() > 0, stats.GetRawText());
        Assert.True(stats.GetProperty("flush").GetInt32() > 0, stats.GetRawText());
        Assert.Equal(structuredReplies, stats.GetProperty("df_reads").GetInt32() > 0);
        IReadOnlyList<ServerConnection> connections = await server.AssertNoErrorsAsync();
        Assert.Equal(structuredReplies, Assert.Single(connections).StructuredReplies);
        // After the client has gone, the device itself holds exactly what the client's model says.
        await DeviceContents.AssertDeviceEqualsFileAsync(device, modelPath);
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task Pipelined_AsyncWritesAndReads_AllCompleteCorrectly(Transport transport)
    {
        var device = new MemoryDevice(16 * 1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        JsonElement output = await RunJsonAsync(PipelinedScript, server.Uri);

        Assert.Equal(256, output.GetProperty("blocks").GetInt32());
        Assert.True(output.GetProperty("peak_in_flight").GetInt32() > 1, output.GetRawText());
        await server.AssertNoErrorsAsync();
        byte[] contents = await DeviceContents.ReadAllAsync(device);
        for (int i = 0; i < 256; i++)
        {
            Assert.Equal((byte)(i * 7 + 5), contents[(i * 65536) + 5]);
        }
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(true, Transport.Streams)]
    [InlineData(false, Transport.Streams)]
    [InlineData(true, Transport.Uring)]
    [InlineData(false, Transport.Uring)]
    public async Task ReadOnlyExport_WriteRefusedWithEperm(bool endSession, Transport transport)
    {
        var device = new MemoryDevice(1024 * 1024);
        byte[] original = await DeviceContents.FillRandomAsync(device, seed: 7);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Device = device,
            ReadOnly = true,
            ServeOptions = new ServeOptions { EndSessionOnReadOnlyWrite = endSession },
            Transport = transport,
        });

        JsonElement output = await RunJsonAsync(ReadOnlyScript, server.Uri);

        Assert.True(output.GetProperty("read_only").GetBoolean());
        Assert.False(output.GetProperty("can_trim").GetBoolean());
        Assert.False(output.GetProperty("can_zero").GetBoolean());
        string head = Convert.ToHexStringLower(original.AsSpan(0, 8));
        Assert.Equal(head, output.GetProperty("data").GetString());
        Assert.Equal(Errno_EPERM, output.GetProperty("client_side_errno").GetInt32());
        Assert.Equal(head, output.GetProperty("data_after_client_refusal").GetString());
        // The server answered the write with EPERM...
        Assert.True(output.TryGetProperty("server_side_errno", out JsonElement errno), output.GetRawText());
        Assert.Equal(Errno_EPERM, errno.GetInt32());
        if (endSession)
        {
            // ...and ended the session (the default), so the next command cannot succeed.
            Assert.NotEqual("read succeeded", output.GetProperty("after").GetString());
        }
        else
        {
            // ...and carried on, as nbdkit does.
            Assert.Equal("read succeeded", output.GetProperty("after").GetString());
        }

        await server.AssertNoErrorsAsync();
        byte[] after = await DeviceContents.ReadAllAsync(device);
        DeviceContents.AssertEqual(original, after, "read-only device");
    }

    private static async Task<JsonElement> RunJsonAsync(string script, params string[] arguments)
    {
        ToolResult result = await ExternalTool.RunPythonAsync(script, arguments, TimeSpan.FromSeconds(120));
        result.EnsureSuccess();
        string line = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        using JsonDocument document = JsonDocument.Parse(Encoding.UTF8.GetBytes(line));
        return document.RootElement.Clone();
    }
}
