using System.Globalization;
using System.Text.RegularExpressions;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>-v: one log line when a connection opens and one when it closes, with peer, export, duration and bytes.</summary>
public sealed partial class ConnectionLogTests
{
    private const int TestTimeout = 60_000;

    /// <summary>Writes 64 KiB + 512 bytes and reads 3 × 4 KiB, then leaves.</summary>
    private const string KnownTrafficScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        h.pwrite(b"w" * 65536, 0)
        h.pwrite(b"v" * 512, 65536)
        for offset in (0, 4096, 65536):
            h.pread(4096, offset)
        h.shutdown()
        print("OK", flush=True)
        """;

    private const long ExpectedWritten = 65536 + 512;
    private const long ExpectedRead = 3 * 4096;

    private static async Task RunKnownTrafficAsync(string uri, NbdfastProcess server)
    {
        ToolResult run = await ExternalTool.PythonAsync(KnownTrafficScript, [uri], Clients.ToolTimeout);
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
    }

    /// <summary>Waits until <paramref name="count"/> close lines are logged and returns them parsed.</summary>
    private static async Task<Match[]> CloseLinesAsync(NbdfastProcess server, int count)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        Match[] closed;
        while ((closed = CloseLine().Matches(server.Stderr).ToArray()).Length < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"expected {count} close lines\n--- server ---\n{server.Stderr}");
            await Task.Delay(20);
        }
        return closed;
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Verbose_LogsOneOpenAndOneCloseLinePerConnection_WithPeerExportAndDuration()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        using NbdfastProcess server = await NbdfastProcess.StartOnFreePortAsync(
            port => ["-v", "--export", "disk=memory:1M,rw", "--export", "other=memory:1M,rw", "-b", "127.0.0.1", "-U", socket, "-p", port.ToString(CultureInfo.InvariantCulture)],
            socket);

        await RunKnownTrafficAsync(Clients.Tcp(server.Port!.Value, "disk"), server);
        await RunKnownTrafficAsync(Clients.Unix(socket, "other"), server);
        Match[] closed = await CloseLinesAsync(server, 2);

        Match[] opened = OpenLine().Matches(server.Stderr).ToArray();
        Assert.Equal(2, opened.Length);
        Assert.Equal(2, closed.Length);
        Assert.NotEqual(opened[0].Groups["id"].Value, opened[1].Groups["id"].Value);
        foreach (Match open in opened)
        {
            Match close = Assert.Single(closed, c => c.Groups["id"].Value == open.Groups["id"].Value);
            Assert.Equal(open.Groups["peer"].Value, close.Groups["peer"].Value);
            Assert.Equal(open.Groups["export"].Value, close.Groups["export"].Value);
            Assert.True(double.Parse(close.Groups["seconds"].Value, CultureInfo.InvariantCulture) >= 0);
        }
        Match tcp = Assert.Single(opened, o => o.Groups["export"].Value == "disk");
        Assert.Matches(@"^127\.0\.0\.1:\d+$", tcp.Groups["peer"].Value);
        Match unix = Assert.Single(opened, o => o.Groups["export"].Value == "other");
        Assert.Equal("unix", unix.Groups["peer"].Value);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Verbose_CloseLineCountsTheBytesTheClientReadAndWrote()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("-v", "--memory", "1M", "--writable");

        await RunKnownTrafficAsync(Clients.Tcp(server.Port!.Value), server);
        Match close = Assert.Single(await CloseLinesAsync(server, 1));

        Assert.True(
            long.Parse(close.Groups["read"].Value, CultureInfo.InvariantCulture) == ExpectedRead &&
            long.Parse(close.Groups["written"].Value, CultureInfo.InvariantCulture) == ExpectedWritten,
            $"expected {ExpectedRead} bytes read and {ExpectedWritten} written in: {close.Value}");
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task WithoutVerbose_NoPerConnectionLines()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M", "--writable");

        await RunKnownTrafficAsync(Clients.Tcp(server.Port!.Value), server);
        Assert.Equal(0, await server.StopAsync());

        Assert.Empty(OpenLine().Matches(server.Stderr));
        Assert.Empty(CloseLine().Matches(server.Stderr));
        Assert.Contains("nbdfast: stopped", server.Stderr, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^nbdfast: connection (?<id>\d+) from (?<peer>\S+): export '(?<export>[^']*)'$", RegexOptions.Multiline)]
    private static partial Regex OpenLine();

    [GeneratedRegex(@"^nbdfast: connection (?<id>\d+) from (?<peer>\S+) closed: export '(?<export>[^']*)', (?<seconds>\d+(\.\d+)?) s, (?<read>\d+) bytes read, (?<written>\d+) bytes written$", RegexOptions.Multiline)]
    private static partial Regex CloseLine();
}
