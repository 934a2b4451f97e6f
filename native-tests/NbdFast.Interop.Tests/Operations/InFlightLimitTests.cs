using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--max-in-flight: a client with more requests in flight is slowed (not refused), and the trip is logged.</summary>
public sealed class InFlightLimitTests
{
    private const string DeepQueueScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        buf = nbd.Buffer(4096)
        cookies = [h.aio_pread(buf, (i % 256) * 4096) for i in range(128)]
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c in cookies:
            assert h.aio_command_completed(c)
        h.shutdown()
        print("all 128 answered", flush=True)
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task MoreRequestsThanTheLimit_AreAllAnswered_AndTheLimitIsLogged(Engine engine)
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--memory", "8M", "--max-in-flight", "4");

        ToolResult run = await ExternalTool.PythonAsync(DeepQueueScript, [server.Uri()]);

        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("all 128 answered", run.Stdout, StringComparison.Ordinal);
        await server.WaitForStderrAsync("(--max-in-flight, --max-in-flight-bytes)");
    }
}
