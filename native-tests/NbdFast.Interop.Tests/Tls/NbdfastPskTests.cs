using System.Text.Json;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Tls;

/// <summary>
/// The published binary with --tls-psk: nbdinfo and qemu-img (GnuTLS) authenticate with the pre-shared key of
/// an nbdkit/qemu psk file; a wrong key or identity is refused; a bad psk file is one error line and exit 2.
/// </summary>
public sealed class NbdfastPskTests
{
    private const int TestTimeout = 60_000;
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    private static string WritePskFile(TempDirectory temp, string name, string identity, string hexKey)
    {
        string path = Path.Combine(temp.Path, name);
        File.WriteAllText(path, $"{identity}:{hexKey}\n");
        return path;
    }

    private static string PskUri(NbdfastProcess server, string identity, string pskFile) =>
        $"nbds://{identity}@localhost:{server.Port}/?tls-psk-file={pskFile}";

    [Fact(Timeout = TestTimeout)]
    public async Task NbdinfoAndQemuImg_WithTheRightKey_AreServed_WrongKeyIsRefused()
    {
        using var temp = new TempDirectory();
        string key = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();
        string serverKeys = WritePskFile(temp, "server.psk", "alice", key);
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--tls-psk", serverKeys, "--memory", "64M");

        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--json", PskUri(server, "alice", serverKeys)], ToolTimeout);
        Assert.True(info.Succeeded, info.Describe() + "\n--- server ---\n" + server.Stderr);
        using (JsonDocument document = JsonDocument.Parse(info.Stdout))
        {
            Assert.Equal(64L << 20, document.RootElement.GetProperty("exports")[0].GetProperty("export-size").GetInt64());
        }

        // qemu reads DIR/keys.psk.
        Directory.CreateDirectory(Path.Combine(temp.Path, "qemu"));
        File.Copy(serverKeys, Path.Combine(temp.Path, "qemu", "keys.psk"));
        ToolResult qemu = await ExternalTool.RunAsync("qemu-img",
            ["info", "--output=json", "--object", $"tls-creds-psk,id=tls0,dir={Path.Combine(temp.Path, "qemu")},username=alice,endpoint=client",
             "--image-opts", $"driver=nbd,host=localhost,port={server.Port},tls-creds=tls0"], ToolTimeout);
        Assert.True(qemu.Succeeded, qemu.Describe() + "\n--- server ---\n" + server.Stderr);

        string wrongKeys = WritePskFile(temp, "wrong.psk", "alice", new string('0', 64));
        ToolResult wrong = await ExternalTool.RunAsync("nbdinfo", ["--json", PskUri(server, "alice", wrongKeys)], ToolTimeout);
        Assert.False(wrong.Succeeded, wrong.Describe());
        string strangerKeys = WritePskFile(temp, "stranger.psk", "mallory", key);
        ToolResult stranger = await ExternalTool.RunAsync("nbdinfo", ["--json", PskUri(server, "mallory", strangerKeys)], ToolTimeout);
        Assert.False(stranger.Succeeded, stranger.Describe());
        ToolResult plain = await ExternalTool.RunAsync("nbdinfo", ["--json", $"nbd://localhost:{server.Port}/"], ToolTimeout);
        Assert.False(plain.Succeeded, plain.Describe());

        Assert.False(server.HasExited, server.Stderr);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("alice-without-colon\n")]
    [InlineData("alice:nothex\n")]
    public async Task MalformedPskFile_IsOneErrorLineAndExitTwo(string contents)
    {
        using var temp = new TempDirectory();
        string path = Path.Combine(temp.Path, "bad.psk");
        File.WriteAllText(path, contents);
        ToolResult result = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--tls-psk", path, "--memory", "1M"], ToolTimeout);
        Assert.Equal(2, result.ExitCode);
        string[] lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("nbdfast: ", lines[0], StringComparison.Ordinal);
    }
}
