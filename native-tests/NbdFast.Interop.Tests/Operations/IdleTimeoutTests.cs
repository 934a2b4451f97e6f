using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--idle-timeout disconnects a client that sends nothing, but never one that keeps sending.</summary>
public sealed class IdleTimeoutTests
{
    private const string IdleThenBusyScript = """
        import nbd, sys, time
        busy = nbd.NBD()
        busy.connect_uri(sys.argv[1])
        idle = nbd.NBD()
        idle.connect_uri(sys.argv[1])
        for _ in range(20):          # 4 s of reads every 0.2 s on one connection, silence on the other
            busy.pread(4096, 0)
            time.sleep(0.2)
        print("busy survived", flush=True)
        try:
            idle.pread(4096, 0)
            print("idle survived", flush=True)
        except nbd.Error as e:
            print("idle disconnected", flush=True)
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task IdleClientIsDisconnected_BusyClientIsNot(Engine engine)
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--memory", "8M", "--idle-timeout", "1.5");

        ToolResult run = await ExternalTool.PythonAsync(IdleThenBusyScript, [server.Uri()], TimeSpan.FromSeconds(40));

        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Contains("busy survived", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("idle disconnected", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, server.CountStderrLines("(--idle-timeout)"));   // the limit is logged when it trips, once
    }
}
