using System.Text.Json;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// Several --export options served at once: listed with their descriptions, each with its own data and access,
/// --no-list, and tls-only exports hidden from plaintext clients.
/// </summary>
public sealed class MultipleExportsTests
{
    private const int TestTimeout = 60_000;
    private const int FileSize = 4 << 20;

    [Fact(Timeout = TestTimeout)]
    public async Task ThreeExports_AreListed_ServedSeparately_AndTheReadOnlyOneRefusesWrites()
    {
        using var temp = new TempDirectory();
        File.WriteAllBytes(temp.File("a.img"), new byte[FileSize]);
        byte[] cOriginal = temp.WriteRandom("c.img", FileSize, seed: 6);
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync(
            "--export", $"a={temp.File("a.img")},rw",
            "--export", "b=memory:8M,rw,desc=TEXT,with,commas",
            "--export", $"c={temp.File("c.img")}");
        int port = server.Port!.Value;

        // LIST: every name, and b's description with its commas intact.
        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--json", "--list", Clients.Tcp(port)], Clients.ToolTimeout);
        Assert.True(list.Succeeded, list.Describe() + "\n--- server ---\n" + server.Stderr);
        using (JsonDocument document = JsonDocument.Parse(list.Stdout))
        {
            var exports = document.RootElement.GetProperty("exports").EnumerateArray()
                .ToDictionary(e => e.GetProperty("export-name").GetString()!, e => e.Clone());
            Assert.Equal(["a", "b", "c"], exports.Keys.Order());
            Assert.Equal("TEXT,with,commas", exports["b"].GetProperty("description").GetString());
            Assert.Equal(FileSize, exports["a"].GetProperty("export-size").GetInt64());
            Assert.Equal(8L << 20, exports["b"].GetProperty("export-size").GetInt64());
            Assert.False(exports["a"].GetProperty("is_read_only").GetBoolean());
            Assert.False(exports["b"].GetProperty("is_read_only").GetBoolean());
            Assert.True(exports["c"].GetProperty("is_read_only").GetBoolean());
        }

        // qemu sees the sizes too.
        ToolResult qemu = await ExternalTool.RunAsync("qemu-img", ["info", "--output=json", Clients.Tcp(port, "b")], Clients.ToolTimeout);
        Assert.True(qemu.Succeeded, qemu.Describe());
        using (JsonDocument document = JsonDocument.Parse(qemu.Stdout))
        {
            Assert.Equal(8L << 20, document.RootElement.GetProperty("virtual-size").GetInt64());
        }

        // Two clients on two exports at once: each writes, and after both have written each reads back only its own.
        using (HeldClient onA = await HeldClient.ConnectAsync(Clients.Tcp(port, "a"), temp.Path, "A"))
        using (HeldClient onB = await HeldClient.ConnectAsync(Clients.Tcp(port, "b"), temp.Path, "B"))
        {
            ToolResult[] done = await Task.WhenAll(onA.ReleaseAsync(), onB.ReleaseAsync());
            Assert.All(done, d => Assert.True(d.Succeeded, d.Describe() + "\n--- server ---\n" + server.Stderr));
        }
        Assert.Equal(Enumerable.Repeat((byte)'A', 4096), await Clients.FirstBlockAsync(Clients.Tcp(port, "a")));
        Assert.Equal(Enumerable.Repeat((byte)'B', 4096), await Clients.FirstBlockAsync(Clients.Tcp(port, "b")));

        // The read-only export refuses a write, and still reads its file.
        ToolResult write = await Clients.WriteAsync(Clients.Tcp(port, "c"));
        Assert.True(write.ExitCode == 4, "expected the write to c to be refused\n" + write.Describe());
        Assert.Equal(cOriginal[..4096], await Clients.FirstBlockAsync(Clients.Tcp(port, "c")));

        Assert.Equal(0, await server.StopAsync());
        byte[] a = File.ReadAllBytes(temp.File("a.img"));
        Assert.Equal(Enumerable.Repeat((byte)'A', 4096).Concat(Enumerable.Repeat((byte)'a', 4096)), a[..8192]);
        Assert.True(a.AsSpan(8192).IndexOfAnyExcept((byte)0) < 0, "a.img changed beyond the two blocks written");
        Bytes.AssertSame(cOriginal, File.ReadAllBytes(temp.File("c.img")));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task NoList_RefusesTheListing_ButExportsStillConnect()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync(
            "--no-list", "--export", "one=memory:1M", "--export", "two=memory:2M");
        int port = server.Port!.Value;

        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--list", Clients.Tcp(port)], Clients.ToolTimeout);
        Assert.False(list.Succeeded, list.Describe());
        Assert.False(list.TimedOut, list.Describe());
        Assert.DoesNotContain("export=\"one\"", list.Stdout, StringComparison.Ordinal);

        ToolResult size = await ExternalTool.RunAsync("nbdinfo", ["--size", Clients.Tcp(port, "two")], Clients.ToolTimeout);
        Assert.True(size.Succeeded, size.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal((2 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), size.Stdout.Trim());
        await Clients.AssertServedAsync(Clients.Tcp(port, "one"), server);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task TlsOnlyExport_HiddenAndRefusedInPlaintext_ListedAndServedOverTls()
    {
        using NbdfastProcess server = await NbdfastProcess.StartTcpAsync(
            "--tls=on", "--tls-certificates", TestPki.Shared.ServerDirectory,
            "--export", "open=memory:1M,desc=anyone",
            "--export", "secret=memory:2M,tls-only,desc=TLS only");
        int port = server.Port!.Value;

        string plainList = await Clients.ListAsync($"nbd://localhost:{port}/", server);
        Assert.Contains("export=\"open\"", plainList, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", plainList, StringComparison.Ordinal);
        await Clients.AssertRefusedAsync($"nbd://localhost:{port}/secret", server);
        await Clients.AssertServedAsync($"nbd://localhost:{port}/open", server);

        string tlsList = await Clients.ListAsync(Clients.Tls(port), server);
        Assert.Contains("export=\"open\"", tlsList, StringComparison.Ordinal);
        Assert.Contains("export=\"secret\"", tlsList, StringComparison.Ordinal);
        Assert.Contains("TLS only", tlsList, StringComparison.Ordinal);
        ToolResult size = await ExternalTool.RunAsync("nbdinfo", ["--size", Clients.Tls(port, "secret")], Clients.ToolTimeout);
        Assert.True(size.Succeeded, size.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal((2 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), size.Stdout.Trim());
        Assert.Equal(0, await server.StopAsync());
    }
}
