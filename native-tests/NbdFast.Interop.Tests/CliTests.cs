using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>Command-line mistakes: exit 2 with one "nbdfast: " line on stderr and no stack trace; --help exits 0.</summary>
public sealed class CliTests
{
    [Theory(Timeout = 30_000)]
    [InlineData("no arguments")]
    [InlineData("bad memory size")]
    [InlineData("missing file")]
    [InlineData("unknown option")]
    [InlineData("port out of range")]
    [InlineData("directory as file")]
    [InlineData("file and memory")]
    [InlineData("writable and read-only")]
    [InlineData("bind not an address")]
    [InlineData("unix path too long")]
    [InlineData("bad io mode")]
    [InlineData("zero threads")]
    public async Task UsageError_ExitsTwoWithOneLine(string mistake)
    {
        using var temp = new TempDirectory();
        File.WriteAllBytes(temp.File("disk.img"), new byte[4096]);
        string[] arguments = mistake switch
        {
            "no arguments" => [],
            "bad memory size" => ["--memory", "1X"],
            "missing file" => [temp.File("missing.img")],
            "unknown option" => ["--bogus", "--memory", "1M"],
            "port out of range" => ["--memory", "1M", "--port", "70000"],
            "directory as file" => [temp.Path],
            "file and memory" => [temp.File("disk.img"), "--memory", "1M"],
            "writable and read-only" => ["--memory", "1M", "--writable", "--read-only"],
            "bind not an address" => ["--memory", "1M", "--bind", "not-an-address"],
            "bad io mode" => ["--memory", "1M", "--io", "epoll"],
            "zero threads" => ["--memory", "1M", "--threads", "0"],
            "unix path too long" => ["--memory", "1M", "-U", temp.File(new string('s', 200) + ".sock")],
            _ => throw new ArgumentOutOfRangeException(nameof(mistake)),
        };

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, arguments, TimeSpan.FromSeconds(10));

        AssertUsageError(run);
    }

    [Fact(Timeout = 30_000)]
    public async Task PortInUse_ExitsTwoWithOneLine()
    {
        using var occupier = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupier.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupier.Listen(1);
        string port = ((IPEndPoint)occupier.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--memory", "1M", "-b", "127.0.0.1", "-p", port], TimeSpan.FromSeconds(10));

        AssertUsageError(run);
    }

    [Fact(Timeout = 30_000)]
    public async Task Help_ExitsZeroAndDescribesMemory()
    {
        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--help"], TimeSpan.FromSeconds(10));

        Assert.True(run.Succeeded, run.Describe());
        Assert.Contains("--memory", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("SYNOPSIS", run.Stdout, StringComparison.Ordinal);
    }

    internal static void AssertUsageError(ToolResult run)
    {
        Assert.False(run.TimedOut, run.Describe());
        Assert.True(run.ExitCode == 2, "expected exit status 2\n" + run.Describe());
        string[] lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "expected exactly one stderr line\n" + run.Describe());
        Assert.StartsWith("nbdfast: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", run.Stderr + run.Stdout, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", run.Stderr + run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", run.Stderr, StringComparison.Ordinal);
    }
}
