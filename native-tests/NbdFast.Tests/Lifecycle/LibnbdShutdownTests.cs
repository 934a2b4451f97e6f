using System.Text.Json;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Lifecycle;

/// <summary>
/// A real client through a graceful shutdown: python3-libnbd with 64 asynchronous writes in flight when the
/// server (InProcessServer, disposed = the host's shutdown) is told to stop, and more issued afterwards.
/// </summary>
public class LibnbdShutdownTests
{
    /// <summary>
    /// argv: uri, a path to wait for, count in flight, count late. Prints a JSON object: the errno of every
    /// early and every late write (0 for success).
    /// </summary>
    private const string Script = """
        import errno, json, nbd, os, sys, time
        uri, go_file, early, late = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        h = nbd.NBD()
        h.connect_uri(uri)
        block = 4096
        def write(i, fill):
            return h.aio_pwrite(bytes([fill]) * block, i * block)
        early_cookies = [write(i, i + 1) for i in range(early)]
        deadline = time.monotonic() + 60
        while not os.path.exists(go_file):
            if time.monotonic() > deadline:
                sys.exit("the test never said go")
            h.poll(0)
            time.sleep(0.01)
        late_cookies = [write(early + j, 0xEE) for j in range(late)]
        while h.aio_in_flight() > 0:
            h.poll(-1)
        def outcome(cookie):
            try:
                h.aio_command_completed(cookie)
                return 0
            except nbd.Error as e:
                # libnbd reports the errno by name ("ESHUTDOWN"): the test checks the number.
                return getattr(errno, e.errno) if isinstance(e.errno, str) else e.errno
        result = {"early": [outcome(c) for c in early_cookies], "late": [outcome(c) for c in late_cookies]}
        h.shutdown()
        print(json.dumps(result))
        """;

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task AioWritesInFlightSucceedAndLaterOnesFailWithEShutdown(Transport transport)
    {
        const int early = 64, late = 8;
        var device = new ShutdownProbeDevice(1 << 20);
        using var directory = new TempDirectory();
        string go = directory.File("go");
        await using InProcessServer server = InProcessServer.Start(new InProcessServerOptions
        {
            Device = device,
            ReadOnly = false,
            Transport = transport,
            ServeOptions = new ServeOptions { ShutdownLinger = TimeSpan.FromMinutes(5) },
        });
        Task<JsonElement> client = LibnbdPython.RunJsonAsync(Script, LifecycleHost.Patience * 2, server.Uri, go, early.ToString(), late.ToString());
        await device.WaitForWritesAsync(early);

        await server.ShutdownAsync();
        await File.WriteAllTextAsync(go, "");
        device.Open();

        JsonElement result = await client;
        await server.WaitForIdleAsync(LifecycleHost.Patience);
        Assert.Equal(Enumerable.Repeat(0, early), result.GetProperty("early").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(Enumerable.Repeat(108, late), result.GetProperty("late").EnumerateArray().Select(e => e.GetInt32()));
        for (int i = 0; i < early; i++)
        {
            var expected = new byte[4096];
            Array.Fill(expected, (byte)(i + 1));
            Assert.Equal(expected, GracefulShutdownTests.ReadBack(device, i * 4096L));
        }
        Assert.Equal(new byte[4096], GracefulShutdownTests.ReadBack(device, early * 4096L));
        Assert.Equal(early, device.WritesDoneAtLastFlush);
        ServerConnection connection = Assert.Single(server.Connections);
        Assert.True(connection.Error is null, server.Describe());
    }
}
