using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// Connection limits trip, are logged, and recover: --max-connections (global), max-connections=N (per export),
/// --max-handshakes and --handshake-timeout.
/// </summary>
public sealed class ConnectionLimitTests
{
    private const int TestTimeout = 60_000;

    [Fact(Timeout = TestTimeout)]
    public async Task MaxConnections_ThirdClientRefused_AndAfterOneLeavesANewOneIsServed()
    {
        using var temp = new TempDirectory();
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M", "--max-connections", "2");
        string uri = Clients.Tcp(server.Port!.Value);

        using HeldClient first = await HeldClient.ConnectAsync(uri, temp.Path);
        using HeldClient second = await HeldClient.ConnectAsync(uri, temp.Path);
        await Clients.AssertRefusedAsync(uri, server);
        Assert.Contains("2 connections already open (--max-connections)", server.Stderr, StringComparison.Ordinal);

        ToolResult left = await first.ReleaseAsync();
        Assert.True(left.Succeeded, left.Describe());
        await Clients.AssertServedSoonAsync(uri, server);

        // The client that stayed was never disturbed.
        ToolResult stayed = await second.ReleaseAsync();
        Assert.True(stayed.Succeeded, stayed.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task PerExportMaxConnections_LimitsThatExportOnly_AndRecovers()
    {
        using var temp = new TempDirectory();
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync(
            "--export", "solo=memory:1M,rw,max-connections=1", "--export", "shared=memory:1M");
        int port = server.Port!.Value;

        using HeldClient holder = await HeldClient.ConnectAsync(Clients.Tcp(port, "solo"), temp.Path, "S");
        await Clients.AssertRefusedAsync(Clients.Tcp(port, "solo"), server);
        Assert.Contains("export 'solo' is at its max-connections (1)", server.Stderr, StringComparison.Ordinal);
        // The refusal comes in the handshake, with a reason the client can show (NBD_REP_ERR_POLICY).
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", [Clients.Tcp(port, "solo")], TimeSpan.FromSeconds(20));
        Assert.False(info.Succeeded, info.Describe());
        Assert.Contains("nbd_opt_go", info.Stderr, StringComparison.Ordinal);   // refused at GO, not after it
        await Clients.AssertServedAsync(Clients.Tcp(port, "shared"), server);
        await Clients.AssertServedAsync(Clients.Tcp(port, "shared"), server);

        ToolResult left = await holder.ReleaseAsync();
        Assert.True(left.Succeeded, left.Describe() + "\n--- server ---\n" + server.Stderr);
        await Clients.AssertServedSoonAsync(Clients.Tcp(port, "solo"), server);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task MaxHandshakes_AStalledHandshakeBlocksTheNext_UntilItIsClosed()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M", "--max-handshakes", "1", "--handshake-timeout", "0");
        int port = server.Port!.Value;
        string uri = Clients.Tcp(port);

        using (TcpClient staller = await Clients.StallAfterGreetingAsync(port))
        {
            await Clients.AssertRefusedAsync(uri, server);
            Assert.Contains("1 clients already in the handshake (--max-handshakes)", server.Stderr, StringComparison.Ordinal);
            Assert.True(staller.Connected);
        }

        await Clients.AssertServedSoonAsync(uri, server);
        // A finished handshake no longer counts: with one client connected, another is served.
        using var temp = new TempDirectory();
        using HeldClient holder = await HeldClient.ConnectAsync(uri, temp.Path);
        await Clients.AssertServedAsync(uri, server);
        Assert.True((await holder.ReleaseAsync()).Succeeded);
        Assert.Equal(0, await server.StopAsync());
    }

    /// <summary>Both engines: with io_uring the handshake runs on blocking socket calls, whose deadline works differently.</summary>
    [Theory(Timeout = TestTimeout)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task HandshakeTimeout_ClosesAStalledClient_AndLogsIt(Engine engine)
    {
        using NbdfastProcess server = await Transport.Tcp.StartAsync(engine, "--memory", "1M", "--handshake-timeout", "1");
        int port = server.Port!.Value;

        using TcpClient staller = await Clients.StallAfterGreetingAsync(port);
        await Clients.BytesUntilClosedAsync(staller, TimeSpan.FromSeconds(15));

        await server.WaitForStderrAsync("(--handshake-timeout)", TimeSpan.FromSeconds(10));
        Assert.Contains("no handshake within 1 s", server.Stderr, StringComparison.Ordinal);
        await Clients.AssertServedAsync(Clients.Tcp(port), server); // a prompt client is unaffected
        Assert.Equal(0, await server.StopAsync());
    }
}
