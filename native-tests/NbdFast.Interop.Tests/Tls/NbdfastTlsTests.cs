using System.Globalization;
using System.Text.Json;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Tls;

/// <summary>
/// The published nbdfast binary with --tls-certificates: nbdinfo (libnbd/GnuTLS) and qemu-img (qemu/GnuTLS) over
/// TLS, plaintext clients against require and on, client-certificate checks, and certificate directories that
/// cannot be loaded.
/// </summary>
public sealed class NbdfastTlsTests
{
    private const int TestTimeout = 60_000;
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    private static string TlsUri(NbdfastProcess server, string clientDirectory) =>
        $"nbds://localhost:{server.Port}/?tls-certificates={clientDirectory}";

    private static string PlainUri(NbdfastProcess server) => $"nbd://localhost:{server.Port}/";

    private static Task<NbdfastProcess> StartAsync(params string[] arguments) =>
        NbdfastProcess.StartTcpAsync(["--tls-certificates", TestPki.Shared.ServerDirectory, .. arguments]);

    private static async Task<JsonElement> InfoAsync(string uri)
    {
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--json", uri], ToolTimeout);
        Assert.True(info.Succeeded, info.Describe());
        using JsonDocument document = JsonDocument.Parse(info.Stdout);
        JsonElement exports = document.RootElement.GetProperty("exports");
        Assert.Equal(1, exports.GetArrayLength());
        return exports[0].Clone();
    }

    private static async Task AssertRefusedAsync(string uri, NbdfastProcess server)
    {
        ToolResult info = await ExternalTool.RunAsync("nbdinfo", ["--json", uri], ToolTimeout);
        Assert.False(info.TimedOut, info.Describe());
        Assert.False(info.Succeeded, info.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.False(server.HasExited, "nbdfast exited after a refused client:\n" + server.Stderr);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Require_NbdinfoOverTls_ReportsTheExport()
    {
        using NbdfastProcess server = await StartAsync("--memory", "64M");

        JsonElement export = await InfoAsync(TlsUri(server, TestPki.Shared.ClientNoCertDirectory));

        Assert.Equal(64L << 20, export.GetProperty("export-size").GetInt64());
        Assert.True(export.GetProperty("is_read_only").GetBoolean());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Require_PlaintextNbdinfo_IsRefused_AndTlsStillWorksAfterwards()
    {
        using NbdfastProcess server = await StartAsync("--memory", "64M");

        await AssertRefusedAsync(PlainUri(server), server);
        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--list", PlainUri(server)], ToolTimeout);
        Assert.False(list.Succeeded, list.Describe());
        Assert.False(list.TimedOut, list.Describe());

        JsonElement export = await InfoAsync(TlsUri(server, TestPki.Shared.ClientNoCertDirectory));
        Assert.Equal(64L << 20, export.GetProperty("export-size").GetInt64());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Require_ClientThatDoesNotTrustTheServer_FailsTheHandshake()
    {
        // The client's ca-cert.pem is another CA: GnuTLS must reject the server, and the server must carry on.
        using NbdfastProcess server = await StartAsync("--memory", "64M");
        using var wrongCa = new TempDirectory();
        File.Copy(TestPki.Shared.OtherCaCertificatePath, wrongCa.File("ca-cert.pem"));

        await AssertRefusedAsync(TlsUri(server, wrongCa.Path), server);

        JsonElement export = await InfoAsync(TlsUri(server, TestPki.Shared.ClientNoCertDirectory));
        Assert.Equal(64L << 20, export.GetProperty("export-size").GetInt64());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task On_PlaintextAndTlsClientsBothWork()
    {
        using NbdfastProcess server = await StartAsync("--tls=on", "--memory", "32M", "-e", "disk", "-D", "optional tls");

        JsonElement plain = await InfoAsync($"nbd://localhost:{server.Port}/disk");
        JsonElement tls = await InfoAsync($"nbds://localhost:{server.Port}/disk?tls-certificates={TestPki.Shared.ClientNoCertDirectory}");
        ToolResult list = await ExternalTool.RunAsync("nbdinfo", ["--list", $"nbd://localhost:{server.Port}/"], ToolTimeout);

        Assert.Equal(32L << 20, plain.GetProperty("export-size").GetInt64());
        Assert.Equal(32L << 20, tls.GetProperty("export-size").GetInt64());
        Assert.True(list.Succeeded, list.Describe());
        Assert.Contains("export=\"disk\"", list.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Off_WithCertificates_ServesPlaintextOnly()
    {
        using NbdfastProcess server = await StartAsync("--tls=off", "--memory", "16M");

        JsonElement plain = await InfoAsync(PlainUri(server));
        Assert.Equal(16L << 20, plain.GetProperty("export-size").GetInt64());
        await AssertRefusedAsync(TlsUri(server, TestPki.Shared.ClientNoCertDirectory), server);
        Assert.Equal(0, await server.StopAsync());
    }

    public static TheoryData<string, bool, bool> PeerCases => new()
    {
        { "alice", true, true },
        { "bob", true, false },
        { "nocert", true, false },
        { "mallory", true, false },
        { "bob", false, true },
        { "nocert", false, false },
        { "mallory", false, false },
    };

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(PeerCases))]
    public async Task VerifyPeer_OnlyCertificatesFromTheCa_AndOnlyAllowedNames(string client, bool allowAliceOnly, bool accepted)
    {
        string[] policy = allowAliceOnly ? ["--tls-verify-peer", "--tls-allow-client", "alice"] : ["--tls-verify-peer"];
        using NbdfastProcess server = await StartAsync(["--memory", "8M", .. policy]);
        string uri = TlsUri(server, TestPki.Shared.ClientDirectory(client));

        if (accepted)
        {
            JsonElement export = await InfoAsync(uri);
            Assert.Equal(8L << 20, export.GetProperty("export-size").GetInt64());
        }
        else
        {
            await AssertRefusedAsync(uri, server);
        }
        Assert.Equal(0, await server.StopAsync());
    }

    private static string[] QemuTlsObject(string clientDirectory) =>
        ["--object", $"tls-creds-x509,id=tls0,dir={clientDirectory},endpoint=client"];

    private static string QemuImageOpts(NbdfastProcess server) =>
        $"driver=nbd,host=localhost,port={server.Port!.Value.ToString(CultureInfo.InvariantCulture)},tls-creds=tls0";

    [Fact(Timeout = TestTimeout)]
    public async Task QemuImgInfo_OverTls()
    {
        using NbdfastProcess server = await StartAsync("--memory", "64M");

        ToolResult info = await ExternalTool.RunAsync("qemu-img",
            ["info", "--output=json", .. QemuTlsObject(TestPki.Shared.ClientNoCertDirectory), "--image-opts", QemuImageOpts(server)], ToolTimeout);

        Assert.True(info.Succeeded, info.Describe() + "\n--- server ---\n" + server.Stderr);
        using JsonDocument document = JsonDocument.Parse(info.Stdout);
        Assert.Equal(64L << 20, document.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task QemuImgConvert_UploadAndDownloadOverTls_WithClientCertificate()
    {
        const int size = 4 << 20;
        using NbdfastProcess server = await StartAsync("--memory", "4M", "--writable", "--tls-verify-peer", "--tls-allow-client", "alice");
        using var temp = new TempDirectory();
        byte[] data = temp.WriteRandom("source.img", size, seed: 77);
        string[] tlsObject = QemuTlsObject(TestPki.Shared.AliceDirectory);

        ToolResult upload = await ExternalTool.RunAsync("qemu-img",
            ["convert", "-n", "-f", "raw", .. tlsObject, temp.File("source.img"), "--target-image-opts", QemuImageOpts(server)], ToolTimeout);
        Assert.True(upload.Succeeded, upload.Describe() + "\n--- server ---\n" + server.Stderr);

        ToolResult download = await ExternalTool.RunAsync("qemu-img",
            ["convert", .. tlsObject, "--image-opts", QemuImageOpts(server), "-O", "raw", temp.File("copy.img")], ToolTimeout);
        Assert.True(download.Succeeded, download.Describe() + "\n--- server ---\n" + server.Stderr);

        byte[] copy = await File.ReadAllBytesAsync(temp.File("copy.img"));
        Assert.Equal(size, copy.Length);
        Assert.True(data.AsSpan().SequenceEqual(copy), "the image read back over TLS differs from the one written");

        // The same server refuses qemu without a client certificate.
        ToolResult refused = await ExternalTool.RunAsync("qemu-img",
            ["info", .. QemuTlsObject(TestPki.Shared.ClientNoCertDirectory), "--image-opts", QemuImageOpts(server)], ToolTimeout);
        Assert.False(refused.Succeeded, refused.Describe());
        Assert.False(refused.TimedOut, refused.Describe());
        Assert.Equal(0, await server.StopAsync());
    }

    public static TheoryData<string> BadDirectories => new()
    {
        "missing-directory", "empty-directory", "garbage-pem", "key-is-a-directory", "key-does-not-match",
        "verify-peer-without-ca", "verify-peer-with-empty-ca",
    };

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(BadDirectories))]
    public async Task UnloadableCertificates_OneLineOnStderr_ExitTwo(string problem)
    {
        using var temp = new TempDirectory();
        string server = TestPki.Shared.ServerDirectory;
        void CopyFromServer(params string[] names)
        {
            foreach (string name in names)
            {
                File.Copy(Path.Combine(server, name), temp.File(name));
            }
        }
        string[] extra = [];
        switch (problem)
        {
            case "missing-directory":
                Directory.Delete(temp.Path);
                break;
            case "empty-directory":
                break;
            case "garbage-pem":
                File.WriteAllText(temp.File("server-cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
                File.WriteAllText(temp.File("server-key.pem"), "hello\n");
                break;
            case "key-is-a-directory":
                CopyFromServer("server-cert.pem", "ca-cert.pem");
                Directory.CreateDirectory(temp.File("server-key.pem"));
                break;
            case "key-does-not-match":
                CopyFromServer("server-cert.pem", "ca-cert.pem");
                File.Copy(Path.Combine(TestPki.Shared.AliceDirectory, "client-key.pem"), temp.File("server-key.pem"));
                break;
            case "verify-peer-without-ca":
                CopyFromServer("server-cert.pem", "server-key.pem");
                extra = ["--tls-verify-peer"];
                break;
            case "verify-peer-with-empty-ca":
                CopyFromServer("server-cert.pem", "server-key.pem");
                File.WriteAllText(temp.File("ca-cert.pem"), "");
                extra = ["--tls-verify-peer"];
                break;
        }

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path,
            ["--memory", "1M", "-b", "127.0.0.1", "-p", "0", "--tls-certificates", temp.Path, .. extra], TimeSpan.FromSeconds(15));

        Assert.False(run.TimedOut, run.Describe());
        Assert.True(run.ExitCode == 2, run.Describe());
        string[] lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "expected one stderr line: " + run.Describe());
        Assert.StartsWith("nbdfast: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("serving", run.Stderr, StringComparison.Ordinal);
    }
}
