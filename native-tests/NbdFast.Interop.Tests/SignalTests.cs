using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>SIGTERM and SIGINT stop the server cleanly (exit 0 within 10 s), with or without a connected client.</summary>
public sealed class SignalTests
{
    private static readonly TimeSpan ExitLimit = TimeSpan.FromSeconds(10);

    /// <summary>Connects, says so, then reads every 50 ms until the server goes away.</summary>
    private const string HoldConnectionScript = """
        import nbd, sys, time
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        print("connected", flush=True)
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                h.pread(4096, 0)
                time.sleep(0.05)
        except nbd.Error as e:
            print("disconnected:", e, flush=True)
            sys.exit(0)
        print("still connected after 30 s", flush=True)
        sys.exit(1)
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Signals.SigTerm)]
    [InlineData(Signals.SigInt)]
    public async Task Signal_IdleServer_ExitsZero(int signal)
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "64M");

        Assert.Equal(0, await server.StopAsync(signal, ExitLimit));
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Signals.SigTerm, Transport.Tcp, Engine.Auto)]
    [InlineData(Signals.SigInt, Transport.Tcp, Engine.Auto)]
    [InlineData(Signals.SigTerm, Transport.Unix, Engine.Auto)]
    [InlineData(Signals.SigInt, Transport.Unix, Engine.Auto)]
    [InlineData(Signals.SigTerm, Transport.Tcp, Engine.Sockets)]
    [InlineData(Signals.SigInt, Transport.Unix, Engine.Sockets)]
    public async Task Signal_WithConnectedClient_ExitsZeroAndDisconnectsIt(int signal, Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");
        using BackgroundTool client = BackgroundTool.Python(HoldConnectionScript, server.Uri());
        await client.WaitForLineAsync("connected", TimeSpan.FromSeconds(15));

        Assert.Equal(0, await server.StopAsync(signal, ExitLimit));

        ToolResult clientResult = await client.WaitForExitAsync(TimeSpan.FromSeconds(10));
        Assert.True(clientResult.Succeeded, clientResult.Describe());
        Assert.Contains("disconnected", clientResult.Stdout, StringComparison.Ordinal);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Signals.SigTerm)]
    [InlineData(Signals.SigInt)]
    public async Task Signal_WithClientStuckInHandshake_ExitsZero(int signal)
    {
        using NbdfastProcess server = await Transport.Tcp.StartAsync(Engine.Auto, "--memory", "64M");
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, server.Port!.Value);
        byte[] greeting = new byte[18];
        await client.GetStream().ReadExactlyAsync(greeting);   // NBDMAGIC, IHAVEOPT, handshake flags; then silence

        Assert.Equal(0, await server.StopAsync(signal, ExitLimit));
    }
}
