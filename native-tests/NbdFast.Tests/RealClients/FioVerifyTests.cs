using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// fio's libnbd engine at queue depth 32: 4 KiB random writes carrying crc32c verify headers over the whole
/// 16 MiB job, then a verify pass that reads every block back and checks it, on TCP and on a unix socket.
/// </summary>
public sealed class FioVerifyTests
{
    private const int TestTimeout = 120_000;
    private const int JobSize = 16 * 1024 * 1024;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothOnTcpAndUnix), MemberType = typeof(Transports))]
    public async Task RandWrite_Crc32cVerify_AtQueueDepth32(Transport transport, bool unixSocket)
    {
        var device = new MemoryDevice(JobSize + 1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);
        // fio's nbd engine takes the libnbd URI; the export name is empty.
        string uri = unixSocket ? $"nbd+unix:///?socket={server.SocketPath}" : $"nbd://127.0.0.1:{server.Port}/";

        ToolResult result = await ExternalTool.RunAsync("fio",
        [
            "--name=nbdfast-verify",
            "--ioengine=nbd",
            $"--uri={uri}",
            "--rw=randwrite",
            "--bs=4k",
            "--iodepth=32",
            $"--size={JobSize}",
            "--verify=crc32c",
            "--verify_fatal=1",
            "--do_verify=1",
            "--randrepeat=0",
            "--output-format=json",
        ], timeout: TimeSpan.FromSeconds(90));

        string describe = result.Describe();
        Assert.True(result.ExitCode == 0, describe);
        Assert.DoesNotContain("verify", result.StdErr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("bad magic", result.StdOut + result.StdErr, StringComparison.OrdinalIgnoreCase);
        using JsonDocument document = JsonDocument.Parse(JsonStart(result.StdOut, describe));
        JsonElement job = document.RootElement.GetProperty("jobs")[0];
        Assert.True(job.GetProperty("error").GetInt32() == 0, describe);
        // Every block was written once, then read back by the verify pass.
        Assert.True(job.GetProperty("write").GetProperty("io_bytes").GetInt64() == JobSize, describe);
        Assert.True(job.GetProperty("read").GetProperty("io_bytes").GetInt64() == JobSize, describe);
        Assert.True(job.GetProperty("write").GetProperty("total_ios").GetInt64() == JobSize / 4096, describe);

        await server.AssertNoErrorsAsync();
        // The job covered exactly the first 16 MiB of the device; the megabyte after it was never written.
        Assert.Equal(JobSize, device.CommittedBytes);
    }

    /// <summary>fio may print notes before its JSON document.</summary>
    private static string JsonStart(string output, string describe)
    {
        int start = output.IndexOf('{', StringComparison.Ordinal);
        Assert.True(start >= 0, $"No JSON in fio's output: {describe}");
        return output[start..];
    }
}
