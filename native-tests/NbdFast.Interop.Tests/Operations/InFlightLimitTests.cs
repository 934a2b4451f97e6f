using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--max-in-flight: a client with more requests in flight is slowed (not refused), and the trip is logged.</summary>
public sealed class InFlightLimitTests
{
    // A client that queues all 128 reads of 64 KiB and waits a second before it reads a single reply. libnbd reads
    // replies while it queues, and a client that reads at once can keep up, so whether more than the limit piled up
    // was timing; here the server's replies fill the socket (8 MiB against a few hundred KiB of buffer) and the
    // requests behind them must wait at the limit, on either engine.
    private const string DeepQueueScript = """
        import socket, struct, sys, time
        path = sys.argv[1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        def read(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise EOFError("server closed")
                data += chunk
            return data
        magic, opt_magic, flags = struct.unpack(">QQH", read(18))
        assert magic == 0x4e42444d41474943 and opt_magic == 0x49484156454f5054, "not fixed newstyle"
        s.sendall(struct.pack(">I", 3))                                  # FIXED_NEWSTYLE | NO_ZEROES
        s.sendall(struct.pack(">QII", opt_magic, 1, 0))                  # NBD_OPT_EXPORT_NAME ""
        size, tflags = struct.unpack(">QH", read(10))
        length = 65536
        s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, i * length, length) for i in range(128)))
        time.sleep(1)                                                    # let the replies fill the socket
        seen = set()
        for _ in range(128):
            reply_magic, error, cookie = struct.unpack(">IIQ", read(16))
            assert reply_magic == 0x67446698 and error == 0, (reply_magic, error)
            read(length)
            seen.add(cookie)
        assert seen == set(range(128))
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 999, 0, 0))   # NBD_CMD_DISC
        s.close()
        print("all 128 answered", flush=True)
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task MoreRequestsThanTheLimit_AreAllAnswered_AndTheLimitIsLogged(Engine engine)
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--memory", "8M", "--max-in-flight", "4");

        ToolResult run = await ExternalTool.PythonAsync(DeepQueueScript, [server.SocketPath!]);

        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("all 128 answered", run.Stdout, StringComparison.Ordinal);
        await server.WaitForStderrAsync("(--max-in-flight, --max-in-flight-bytes)");
    }
}
