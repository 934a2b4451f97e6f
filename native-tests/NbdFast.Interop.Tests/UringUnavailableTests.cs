using System.Globalization;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>
/// reliability.md §(c): io_uring unavailable (seccomp, kernel.io_uring_disabled, an old kernel), forced through
/// the NBDFAST_URING_SETUP_ERRNO test hook, which makes io_uring_setup fail with that errno. <c>--io auto</c>
/// says so in the log and serves on sockets; <c>--io uring</c> refuses to start with one line and status 2.
/// </summary>
public sealed class UringUnavailableTests
{
    private const string WriteReadScript = """
        import nbd, os, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        data = os.urandom(1 << 20)
        for offset in (0, 7 << 20, (64 << 20) - (1 << 20)):
            h.pwrite(data, offset)
        h.flush()
        for offset in (0, 7 << 20, (64 << 20) - (1 << 20)):
            assert h.pread(1 << 20, offset) == data, f"read-back differs at {offset}"
        h.shutdown()
        print("OK")
        """;

    private static Dictionary<string, string> FailingSetup(int errno) =>
        new() { ["NBDFAST_URING_SETUP_ERRNO"] = errno.ToString(CultureInfo.InvariantCulture) };

    [Theory(Timeout = 60_000)]
    [InlineData(1, "Operation not permitted")]     // EPERM: seccomp or io_uring_disabled=2
    [InlineData(38, "Function not implemented")]   // ENOSYS: a kernel without io_uring
    public async Task IoAuto_LogsTheFallbackAndServesOnSockets(int errno, string strerror)
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync(FailingSetup(errno), "--memory", "64M", "--writable", "--io", "auto");

        Assert.Contains($"nbdfast: io_uring unavailable (io_uring_setup failed: {strerror} (errno {errno})); using the socket transport\n",
            server.Stderr, StringComparison.Ordinal);
        string serving = server.Stderr.Split('\n').Single(l => l.StartsWith("nbdfast: serving", StringComparison.Ordinal));
        Assert.EndsWith("(sockets)", serving, StringComparison.Ordinal);

        ToolResult run = await ExternalTool.PythonAsync(WriteReadScript, [server.Uri()]);
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(1, "Operation not permitted")]
    [InlineData(38, "Function not implemented")]
    public async Task IoUring_ExitsTwoWithOneLine(int errno, string strerror)
    {
        using var temp = new TempDirectory();
        ToolResult run = await ExternalTool.RunAsync("/usr/bin/env",
            [$"NBDFAST_URING_SETUP_ERRNO={errno}", NbdfastBinary.Path, "--memory", "64M", "--io", "uring", "-U", temp.File("nbd.sock")],
            TimeSpan.FromSeconds(20));

        Assert.False(run.TimedOut, "nbdfast --io uring started serving although io_uring_setup failed:\n" + run.Describe());
        Assert.Equal(2, run.ExitCode);
        Assert.Equal($"nbdfast: --io uring: io_uring_setup failed: {strerror} (errno {errno})\n", run.Stderr);
        Assert.Empty(run.Stdout);
        Assert.False(File.Exists(temp.File("nbd.sock")), "the socket was created");
    }
}
