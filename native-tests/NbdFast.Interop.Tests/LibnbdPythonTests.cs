using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>python3-libnbd: random I/O verified against a shadow copy, and export-name selection.</summary>
public sealed class LibnbdPythonTests
{
    private const string RandomIoScript = """
        import nbd, random, sys
        uri, size, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        h = nbd.NBD()
        h.connect_uri(uri)
        assert h.get_size() == size, f"size {h.get_size()} != {size}"
        assert not h.is_read_only(), "export is read-only"
        shadow = bytearray(size)          # a fresh RAM disk reads as zeros
        rng = random.Random(20240611)
        counts = {"pwrite": 0, "pread": 0, "flush": 0}
        for i in range(ops):
            op = rng.choice(["pwrite", "pwrite", "pread", "pread", "flush"])
            length = rng.randint(1, 256 * 1024)
            offset = rng.randrange(0, size - length + 1)
            if rng.random() < 0.3:
                offset -= offset % 4096   # mix aligned and unaligned requests
            if op == "pwrite":
                data = rng.randbytes(length)
                flags = nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0
                h.pwrite(data, offset, flags)
                shadow[offset:offset + length] = data
            elif op == "pread":
                got = h.pread(length, offset)
                if got != shadow[offset:offset + length]:
                    bad = next(j for j in range(length) if got[j] != shadow[offset + j])
                    sys.exit(f"op {i}: pread({length}, {offset}) differs at byte {offset + bad}")
            else:
                h.flush()
            counts[op] += 1
        chunk = 16 << 20
        for offset in range(0, size, chunk):
            if h.pread(chunk, offset) != shadow[offset:offset + chunk]:
                sys.exit(f"final read-back differs in [{offset}, {offset + chunk})")
        h.shutdown()
        print("OK", counts)
        """;

    private const string ConnectScript = """
        import nbd, sys
        h = nbd.NBD()
        try:
            h.connect_uri(sys.argv[1])
        except nbd.Error as e:
            print("REJECTED:", e)
            sys.exit(3)
        print("CONNECTED size", h.get_size())
        h.shutdown()
        """;

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task RandomPwritePreadFlush_RoundTrip(Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");

        ToolResult run = await ExternalTool.PythonAsync(RandomIoScript, [server.Uri(), (64 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), "100"]);

        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.StartsWith("OK", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.Unix)]
    public async Task ExportName_OnlyTheNamedExportConnects(Transport transport)
    {
        using NbdfastProcess server = await transport.StartAsync("--memory", "64M", "-e", "foo");

        ToolResult foo = await ExternalTool.PythonAsync(ConnectScript, [server.Uri("foo")]);
        Assert.True(foo.Succeeded, foo.Describe());
        Assert.Contains("CONNECTED size 67108864", foo.Stdout, StringComparison.Ordinal);

        ToolResult bar = await ExternalTool.PythonAsync(ConnectScript, [server.Uri("bar")]);
        Assert.True(bar.ExitCode == 3 && !bar.TimedOut, bar.Describe());
        Assert.Contains("REJECTED", bar.Stdout, StringComparison.Ordinal);

        ToolResult defaultName = await ExternalTool.PythonAsync(ConnectScript, [server.Uri("")]);
        Assert.True(defaultName.ExitCode == 3 && !defaultName.TimedOut, defaultName.Describe());

        // A refused export name leaves the server serving others.
        ToolResult again = await ExternalTool.PythonAsync(ConnectScript, [server.Uri("foo")]);
        Assert.True(again.Succeeded, again.Describe());
        Assert.Equal(0, await server.StopAsync());
    }
}
