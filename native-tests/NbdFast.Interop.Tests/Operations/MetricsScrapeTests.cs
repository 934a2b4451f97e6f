using System.Text.RegularExpressions;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--metrics on the published binary: a Prometheus scrape shows exactly the I/O a real client did.</summary>
public sealed partial class MetricsScrapeTests
{
    private const string IoScript = """
        import nbd, sys
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for i in range(5):
            h.pwrite(b"\x07" * 4096, i * 4096)
        for i in range(3):
            h.pread(8192, 0)
        h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_BOUNDS)
        try:
            h.pread(4096, h.get_size())
        except nbd.Error:
            pass
        h.shutdown()
        """;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task Scrape_CountsMatchTheClientsIo(Engine engine)
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, "--memory", "8M", "--writable", "-e", "m", "--metrics", "127.0.0.1:0");
        await server.WaitForStderrAsync("metrics at ");
        string url = MetricsUrl().Match(server.Stderr).Groups[1].Value.TrimEnd('/') + "/metrics";

        ToolResult io = await ExternalTool.PythonAsync(IoScript, [server.Uri()]);
        Assert.True(io.Succeeded, io.Describe());

        using var http = new HttpClient();
        string text = await http.GetStringAsync(new Uri(url));
        Assert.Equal(5, Sample(text, "nbdfast_requests_total", "write"));
        Assert.Equal(4, Sample(text, "nbdfast_requests_total", "read"));
        Assert.Equal(5 * 4096, Sample(text, "nbdfast_io_bytes_total", "write"));
        Assert.Equal(3 * 8192, Sample(text, "nbdfast_io_bytes_total", "read"));
        Assert.Equal(1, Sample(text, "nbdfast_errors_total", "read"));
        Assert.Equal(4, Sample(text, "nbdfast_request_duration_seconds_count", "read"));
    }

    /// <summary>The value of <paramref name="metric"/> for export "m" and <paramref name="command"/>.</summary>
    private static double Sample(string text, string metric, string command)
    {
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(metric + "{", StringComparison.Ordinal) &&
                line.Contains($"nbd_command=\"{command}\"", StringComparison.Ordinal) &&
                line.Contains("nbd_export=\"m\"", StringComparison.Ordinal))
            {
                string value = line[(line.IndexOf('}', StringComparison.Ordinal) + 1)..].Trim().Split(' ')[0];
                return double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        throw new Xunit.Sdk.XunitException($"no {metric} sample for {command}\n{text}");
    }

    [GeneratedRegex(@"metrics at (\S+)")]
    private static partial Regex MetricsUrl();
}
