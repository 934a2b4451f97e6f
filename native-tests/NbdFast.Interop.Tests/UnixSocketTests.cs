using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>The unix socket file's life cycle: removed at exit, a stale one replaced, anything else left alone.</summary>
public sealed class UnixSocketTests
{
    private static readonly TimeSpan ExitLimit = TimeSpan.FromSeconds(10);

    [Theory(Timeout = 60_000)]
    [InlineData(Signals.SigTerm)]
    [InlineData(Signals.SigInt)]
    public async Task Signal_RemovesTheSocketFile(int signal)
    {
        using NbdfastProcess server = await NbdfastProcess.StartUnixAsync("--memory", "64M");
        string socket = server.SocketPath!;
        Assert.True(File.Exists(socket), $"{socket} does not exist while serving");

        Assert.Equal(0, await server.StopAsync(signal, ExitLimit));

        Assert.False(File.Exists(socket), $"{socket} is still there after exit");
    }

    /// <summary>Listeners.OpenUnix promises to remove "a socket file left by a previous run".</summary>
    [Fact(Timeout = 60_000)]
    public async Task StaleSocketFromAKilledServer_IsReplaced()
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        using (NbdfastProcess crashed = await NbdfastProcess.StartUnixAtAsync(socket, "--memory", "1M"))
        {
            await crashed.StopAsync(Signals.SigKill);
        }
        Assert.True(File.Exists(socket), "SIGKILL should leave the socket file behind");

        using NbdfastProcess server = await NbdfastProcess.StartUnixAtAsync(socket, "--memory", "1M");

        ToolResult info = await ExternalTool.RunAsync("nbdinfo", "--size", server.Uri());
        Assert.True(info.Succeeded, info.Describe());
        Assert.Equal("1048576", info.Stdout.Trim());
        Assert.Equal(0, await server.StopAsync());
    }

    /// <summary>"anything else at that path is kept": an ordinary (if empty, dot-named) file is not deleted to make room.</summary>
    [Theory(Timeout = 60_000)]
    [InlineData(".nbd.sock", 0)]
    [InlineData("nbd.sock", 0)]
    [InlineData("nbd.sock", 10)]
    public async Task RegularFileAtSocketPath_IsKeptAndTheServerRefusesToStart(string name, int length)
    {
        using var temp = new TempDirectory();
        string path = temp.File(name);
        File.WriteAllBytes(path, new byte[length]);

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--memory", "1M", "-U", path], TimeSpan.FromSeconds(5));

        ToolResult stat = await ExternalTool.RunAsync("stat", "-c", "%F", path);
        Assert.True(stat.Succeeded && stat.Stdout.StartsWith("regular", StringComparison.Ordinal),
            $"{path} is no longer the regular file we made ({stat.Stdout.Trim()}{stat.Stderr.Trim()})\n{run.Describe()}");
        Assert.Equal(length, new FileInfo(path).Length);
        Assert.False(run.TimedOut, run.Describe());
        Assert.True(run.ExitCode == 2, run.Describe());
        Assert.StartsWith("nbdfast: ", run.Stderr, StringComparison.Ordinal);
    }
}
