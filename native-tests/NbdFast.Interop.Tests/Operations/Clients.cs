using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// A python3-libnbd client that connects, does I/O, then holds its connection open until the test releases it
/// (by creating a file), does I/O again and leaves: how the tests keep a connection counted while they look at
/// what the server does meanwhile.
/// </summary>
internal sealed class HeldClient : IDisposable
{
    /// <summary>
    /// argv: URI, RELEASE_FILE, TAG. TAG "-" only reads; a letter writes a block of it at 0 before saying
    /// "connected" and a block of its lower case at 4096 after the release, checking both read back.
    /// </summary>
    private const string Script = """
        import nbd, os, sys, time
        uri, release, tag = sys.argv[1], sys.argv[2], sys.argv[3]
        h = nbd.NBD()
        h.connect_uri(uri)
        first = tag.encode() * 4096
        if tag != "-":
            h.pwrite(first, 0)
            if h.pread(4096, 0) != first:
                sys.exit("the first block did not read back")
        else:
            h.pread(4096, 0)
        print("connected", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(release):
            if time.monotonic() > deadline:
                sys.exit("never released")
            time.sleep(0.02)
        if tag != "-":
            second = tag.lower().encode() * 4096
            h.pwrite(second, 4096)
            if h.pread(8192, 0) != first + second:
                sys.exit("the blocks did not read back after the release")
        else:
            h.pread(4096, 0)
        h.shutdown()
        print("done", flush=True)
        """;

    private static int _next;
    private readonly string _releaseFile;

    private HeldClient(string uri, string scratchDirectory, string tag)
    {
        _releaseFile = Path.Combine(scratchDirectory, $"release-{Interlocked.Increment(ref _next)}");
        Tool = BackgroundTool.Python(Script, uri, _releaseFile, tag);
    }

    public BackgroundTool Tool { get; }

    /// <summary>Connects and waits until the client has done its first I/O; throws (with its output) if it cannot.</summary>
    public static async Task<HeldClient> ConnectAsync(string uri, string scratchDirectory, string tag = "-")
    {
        var client = new HeldClient(uri, scratchDirectory, tag);
        try
        {
            await client.Tool.WaitForLineAsync("connected", TimeSpan.FromSeconds(20));
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>Lets the client do its second round of I/O and leave; returns how that went.</summary>
    public async Task<ToolResult> ReleaseAsync()
    {
        await File.WriteAllTextAsync(_releaseFile, "go");
        return await Tool.WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public void Dispose() => Tool.Dispose();
}

/// <summary>One-shot clients and raw sockets for the operations tests.</summary>
internal static class Clients
{
    public static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Connects, reads the first 512 bytes, leaves. Exit 0 and "OK SIZE" when served; exit 3 when refused at any point.</summary>
    private const string ReadScript = """
        import nbd, sys
        h = nbd.NBD()
        try:
            h.connect_uri(sys.argv[1])
            h.pread(512, 0)
            size = h.get_size()
            h.shutdown()
        except nbd.Error as e:
            print("REFUSED:", e, flush=True)
            sys.exit(3)
        print("OK", size, flush=True)
        """;

    /// <summary>Writes one byte at 0. Exit 0 on success, 4 when the write is refused (connecting must work).</summary>
    private const string WriteScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        try:
            h.pwrite(b"x", 0)
        except nbd.Error as e:
            print("WRITE REFUSED:", e, flush=True)
            sys.exit(4)
        h.shutdown()
        print("WRITTEN", flush=True)
        """;

    /// <summary>Prints the first 4096 bytes as hex, one line.</summary>
    private const string FirstBlockScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        print(h.pread(4096, 0).hex(), flush=True)
        h.shutdown()
        """;

    public static string Tcp(int port, string export = "") => $"nbd://127.0.0.1:{port}/{Uri.EscapeDataString(export)}";

    public static string Tcp6(int port, string export = "") => $"nbd://[::1]:{port}/{Uri.EscapeDataString(export)}";

    public static string Unix(string socketPath, string export = "") => $"nbd+unix:///{Uri.EscapeDataString(export)}?socket={socketPath}";

    public static string Tls(int port, string export = "") =>
        $"nbds://localhost:{port}/{Uri.EscapeDataString(export)}?tls-certificates={TestPki.Shared.ClientNoCertDirectory}";

    /// <summary>python3-libnbd connects and reads; see <see cref="ReadScript"/>.</summary>
    public static Task<ToolResult> ReadAsync(string uri) => ExternalTool.PythonAsync(ReadScript, [uri], ToolTimeout);

    public static Task<ToolResult> WriteAsync(string uri) => ExternalTool.PythonAsync(WriteScript, [uri], ToolTimeout);

    public static async Task<byte[]> FirstBlockAsync(string uri)
    {
        ToolResult run = await ExternalTool.PythonAsync(FirstBlockScript, [uri], ToolTimeout);
        Assert.True(run.Succeeded, run.Describe());
        return Convert.FromHexString(run.Stdout.Trim());
    }

    /// <summary>Asserts that a python client is served, with the server's log in the message when it is not.</summary>
    public static async Task AssertServedAsync(string uri, NbdfastProcess server)
    {
        ToolResult run = await ReadAsync(uri);
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.StartsWith("OK", run.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Asserts that a python client is refused (connect or first read fails) and the server lives on.</summary>
    public static async Task AssertRefusedAsync(string uri, NbdfastProcess server)
    {
        ToolResult run = await ReadAsync(uri);
        Assert.False(run.TimedOut, run.Describe());
        Assert.True(run.ExitCode == 3, "expected the client to be refused\n" + run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.False(server.HasExited, "nbdfast exited after refusing a client:\n" + server.Stderr);
    }

    /// <summary>Polls until a python client is served (a limit recovers once the server has noticed a client left).</summary>
    public static async Task AssertServedSoonAsync(string uri, NbdfastProcess server, TimeSpan? within = null)
    {
        DateTime deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(20));
        ToolResult run;
        while (!(run = await ReadAsync(uri)).Succeeded && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
    }

    /// <summary>nbdinfo --list; asserts it succeeded.</summary>
    public static async Task<string> ListAsync(string uri, NbdfastProcess server)
    {
        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--list", uri], ToolTimeout);
        Assert.True(list.Succeeded, list.Describe() + "\n--- server ---\n" + server.Stderr);
        return list.Stdout;
    }

    /// <summary>A raw TCP client that has read the server's 18-byte greeting and then says nothing.</summary>
    public static async Task<TcpClient> StallAfterGreetingAsync(int port)
    {
        var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            byte[] greeting = new byte[18];
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await client.GetStream().ReadExactlyAsync(greeting, cts.Token);
            Assert.Equal("NBDMAGIC"u8.ToArray(), greeting[..8]);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits for the server to close <paramref name="client"/>; returns how many bytes it sent first (anything
    /// before end-of-file or a reset). Throws when it is still open after <paramref name="timeout"/>.
    /// </summary>
    public static async Task<int> BytesUntilClosedAsync(TcpClient client, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        byte[] buffer = new byte[256];
        int total = 0;
        try
        {
            int read;
            while ((read = await client.GetStream().ReadAsync(buffer, cts.Token)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // A reset is a close too.
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the server did not close the connection within {timeout.TotalSeconds} s");
        }
        return total;
    }
}
