using System.Globalization;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// systemd socket activation (LISTEN_FDS/LISTEN_PID): a TCP and a unix socket passed by systemd's own
/// systemd-socket-activate and by a minimal launcher; combining it with -b is a usage error.
/// </summary>
public sealed class SocketActivationTests
{
    private const int TestTimeout = 60_000;

    /// <summary>
    /// What systemd does: listening sockets on fds 3.., LISTEN_FDS and LISTEN_PID (our own pid, kept across
    /// exec), then exec. argv: UNIX_PATH, then nbdfast and its arguments. Prints the TCP port it bound.
    /// </summary>
    private const string LauncherScript = """
        import fcntl, os, socket, sys
        unix_path, program, arguments = sys.argv[1], sys.argv[2], sys.argv[2:]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(unix_path)
        unix.listen(16)
        # Park the sockets above the target range first, so placing one cannot clobber the other.
        high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100) for s in (tcp, unix)]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
            os.set_inheritable(3 + i, True)
            os.close(fd)
        print(f"launcher: tcp port {tcp.getsockname()[1]}", file=sys.stderr, flush=True)
        env = dict(os.environ, LISTEN_FDS="2", LISTEN_PID=str(os.getpid()))
        os.execve(program, arguments, env)
        """;

    private static IReadOnlyList<string> Launcher(string unixPath) => [ToolEnvironment.Python, "-c", LauncherScript, unixPath];

    private static int PortFrom(string stderr)
    {
        const string Marker = "launcher: tcp port ";
        string line = stderr.Split('\n').First(l => l.StartsWith(Marker, StringComparison.Ordinal));
        return int.Parse(line[Marker.Length..], CultureInfo.InvariantCulture);
    }

    private static async Task AssertBothServedAsync(NbdfastProcess server, int port, string socket)
    {
        foreach (string uri in new[] { Clients.Tcp(port), Clients.Unix(socket) })
        {
            ToolResult size = await ExternalTool.RunAsync("nbdinfo", ["--size", uri], Clients.ToolTimeout);
            Assert.True(size.Succeeded, size.Describe() + "\n--- server ---\n" + server.Stderr);
            Assert.Equal((8 << 20).ToString(CultureInfo.InvariantCulture), size.Stdout.Trim());
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Launcher_TcpAndUnixSocketsPassed_ClientsOnBothAreServed()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("activated.sock");
        using NbdfastProcess server = NbdfastProcess.StartLaunched(Launcher(socket), ["--memory", "8M"]);
        await server.WaitForStderrAsync("nbdfast: serving");
        int port = PortFrom(server.Stderr);
        Assert.Contains($"127.0.0.1:{port}", server.Stderr, StringComparison.Ordinal);
        Assert.Contains(socket, server.Stderr, StringComparison.Ordinal);

        await AssertBothServedAsync(server, port, socket);
        await Clients.AssertServedAsync(Clients.Tcp(port), server);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task SystemdSocketActivate_StartsNbdfastOnTheFirstConnection_AndBothSocketsServe()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("activated.sock");
        for (int attempt = 1; ; attempt++)
        {
            int port = NbdfastProcess.FreeTcpPort();
            using NbdfastProcess server = NbdfastProcess.StartLaunched(
                ["systemd-socket-activate", "-l", $"127.0.0.1:{port}", "-l", socket], ["--memory", "8M"]);
            try
            {
                await server.WaitForStderrAsync("as 4.");
            }
            catch (TimeoutException) when (attempt < 5 && server.HasExited)
            {
                continue; // the port was taken between the probe and systemd-socket-activate's bind
            }
            Assert.DoesNotContain("nbdfast: serving", server.Stderr, StringComparison.Ordinal);

            await AssertBothServedAsync(server, port, socket); // the first connection makes it exec nbdfast
            Assert.Contains("nbdfast: serving", server.Stderr, StringComparison.Ordinal);
            Assert.Equal(0, await server.StopAsync());
            Assert.True(File.Exists(socket), "nbdfast removed a unix socket that systemd owns");
            return;
        }
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("-b", "127.0.0.1")]
    [InlineData("-U", "/tmp/nbdfast-not-used.sock")]
    [InlineData("-p", "10809")]
    public async Task SocketActivationWithExplicitListeners_ExitsTwoWithOneLine(string option, string value)
    {
        using var temp = new TempDirectory();
        string socket = temp.File("activated.sock");
        using NbdfastProcess server = NbdfastProcess.StartLaunched(Launcher(socket), ["--memory", "8M", option, value]);

        Assert.Equal(2, await server.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        string[] lines = server.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("launcher:", StringComparison.Ordinal)).ToArray();
        Assert.True(lines.Length == 1, "expected one line from nbdfast\n" + server.Stderr);
        Assert.StartsWith("nbdfast: socket activation", lines[0], StringComparison.Ordinal);
    }
}
