using System.Globalization;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// Listeners: IPv4, IPv6 and a unix socket at once; the unix socket's mode and owner; the pid file's life.
/// </summary>
public sealed class ListenerTests
{
    private const int TestTimeout = 60_000;

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    [Fact(Timeout = TestTimeout)]
    public async Task Ipv4Ipv6AndUnixTogether_AClientOnEachIsServed()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        using NbdfastProcess server = await NbdfastProcess.StartOnFreePortAsync(
            port => ["--memory", "2M", "-b", "127.0.0.1", "-b", "::1", "-U", socket, "-p", Text(port)], socket);
        int port = server.Port!.Value;

        string[] uris = [Clients.Tcp(port), Clients.Tcp6(port), Clients.Unix(socket)];
        ToolResult[] runs = await Task.WhenAll(uris.Select(uri => ExternalTool.RunAsync("nbdinfo", ["--size", uri], Clients.ToolTimeout)));

        foreach (ToolResult run in runs)
        {
            Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
            Assert.Equal(Text(2 << 20), run.Stdout.Trim());
        }
        Assert.Equal(0, await server.StopAsync());
        Assert.False(File.Exists(socket), "the unix socket outlived the server");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task UnixModeAndOwner_AreSetOnTheSocket()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        using NbdfastProcess server = await NbdfastProcess.StartUnixAtAsync(socket, "--memory", "1M", "--unix-mode", "600", "--unix-owner", "65534:65534");

        ToolResult stat = await ExternalTool.RunAsync("stat", ["-c", "%F %a %u %g", socket], Clients.ToolTimeout);
        Assert.True(stat.Succeeded, stat.Describe());
        Assert.Equal("socket 600 65534 65534", stat.Stdout.Trim());
        await Clients.AssertServedAsync(Clients.Unix(socket), server); // root still gets in
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("660", "0", "660 0 0")]
    [InlineData("0666", ":nogroup", "666 0 65534")]
    [InlineData("640", "nobody", "640 65534 0")]
    public async Task UnixModeAndOwner_ByNameOrNumber(string mode, string owner, string expected)
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        using NbdfastProcess server = await NbdfastProcess.StartUnixAtAsync(socket, "--memory", "1M", "--unix-mode", mode, "--unix-owner", owner);

        ToolResult stat = await ExternalTool.RunAsync("stat", ["-c", "%a %u %g", socket], Clients.ToolTimeout);
        Assert.True(stat.Succeeded, stat.Describe());
        Assert.Equal(expected, stat.Stdout.Trim());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task PidFile_HoldsThePidWhileServing_AndIsRemovedAfterSigterm()
    {
        using var temp = new TempDirectory();
        string pidFile = temp.File("nbdfast.pid");
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M", "--pidfile", pidFile);

        Assert.True(File.Exists(pidFile), "no pid file while serving\n" + server.Stderr);
        Assert.Equal(Text(server.Pid), File.ReadAllText(pidFile).Trim());

        Assert.Equal(0, await server.StopAsync(Signals.SigTerm));
        Assert.False(File.Exists(pidFile), "the pid file is still there after exit");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task PidFileInAMissingDirectory_ExitsTwoWithOneLine()
    {
        using var temp = new TempDirectory();

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path,
            ["--memory", "1M", "-b", "127.0.0.1", "-p", "0", "--pidfile", temp.File("no/such/dir/nbdfast.pid")], TimeSpan.FromSeconds(15));

        CliTests.AssertUsageError(run);
        Assert.Contains("--pidfile", run.Stderr, StringComparison.Ordinal);
    }
}
