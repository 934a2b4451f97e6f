using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using NbdFast.Cli;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Diagnostics;

/// <summary>
/// The CLI's <c>--metrics</c> endpoint, in process: python3-libnbd does known I/O against an in-process server on
/// each transport, then /metrics is scraped over HTTP and its counters, bytes, latency histogram and error
/// counter must match that I/O exactly. Each test serves an export name of its own, so what other tests
/// record at the same time (the meter is process-wide) is told apart by the <c>nbd_export</c> label.
/// </summary>
public sealed class MetricsEndpointTests
{
    private const int TestTimeout = 120_000;
    private const int Writes = 7;
    private const int WriteSize = 4096;
    private const int Reads = 5;
    private const int ReadSize = 8192;
    private const int Errno_EINVAL = 22;

    // Known I/O: WRITES writes, READS reads, one flush, one write-zeroes, then a read past the end of the export
    // (libnbd's own bounds check is turned off so that the request reaches the server, which answers EINVAL).
    private const string IoScript = """
        import json, sys, nbd
        uri, writes, write_size, reads, read_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        h = nbd.NBD()
        h.connect_uri(uri)
        for i in range(writes):
            h.pwrite(bytes([i + 1]) * write_size, i * 65536)
        for i in range(reads):
            data = h.pread(read_size, i * 65536)
            assert data[0] == i + 1, (i, data[0])
        h.flush()
        h.zero(4096, 1 << 20)
        h.set_strict_mode(0)
        out = {"size": h.get_size()}
        try:
            h.pread(4096, h.get_size())
            out["errno"] = 0
        except nbd.Error as e:
            out["errno"] = e.errnum
        h.shutdown()
        print(json.dumps(out))
        """;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ScrapedCountersMatchTheIoDone(Transport transport)
    {
        string export = $"metrics-{Guid.NewGuid():N}";
        using MetricsEndpoint endpoint = MetricsEndpoint.Start("127.0.0.1:0");
        Assert.Matches(@"^http://127\.0\.0\.1:[1-9][0-9]*/metrics$", endpoint.Url);
        await using var device = new MemoryDevice(16 << 20);
        await using var server = InProcessServer.Start(device, readOnly: false, exportName: export, transport: transport);

        JsonElement result = await LibnbdPython.RunJsonAsync(IoScript, TimeSpan.FromMilliseconds(TestTimeout),
            server.Uri, $"{Writes}", $"{WriteSize}", $"{Reads}", $"{ReadSize}");
        Assert.Equal(Errno_EINVAL, result.GetProperty("errno").GetInt32());
        // Once the server has closed the connection, every request has been answered and counted.
        await server.AssertNoErrorsAsync();

        PrometheusText m = await PrometheusText.ScrapeAsync(endpoint.Url);
        var mine = ("nbd_export", export);
        string Because() => $"{server.Describe()}{Environment.NewLine}{string.Join(Environment.NewLine, m.WithLabel("nbd_export", export))}";

        Assert.True(Writes == m.Value("nbdfast_requests_total", mine, ("nbd_command", "write")), Because());
        Assert.Equal(Reads + 1, m.Value("nbdfast_requests_total", mine, ("nbd_command", "read")));
        Assert.Equal(1, m.Value("nbdfast_requests_total", mine, ("nbd_command", "flush")));
        Assert.Equal(1, m.Value("nbdfast_requests_total", mine, ("nbd_command", "write_zeroes")));
        Assert.Equal(Writes + Reads + 3, m.WithLabel("nbd_export", export).Where(s => s.Name == "nbdfast_requests_total").Sum(s => s.Value));

        // Payload bytes of successful reads and writes only: the failed read and the zeroing move none.
        Assert.Equal(Writes * WriteSize, m.Value("nbdfast_io_bytes_total", mine, ("nbd_command", "write")));
        Assert.Equal(Reads * ReadSize, m.Value("nbdfast_io_bytes_total", mine, ("nbd_command", "read")));
        Assert.Equal(2, m.WithLabel("nbd_export", export).Count(s => s.Name == "nbdfast_io_bytes_total"));

        Assert.Equal(1, m.Value("nbdfast_errors_total", mine, ("nbd_command", "read"), ("nbd_error", "EINVAL")));
        Assert.Single(m.WithLabel("nbd_export", export), s => s.Name == "nbdfast_errors_total");

        // One latency observation per answered request, in buckets whose +Inf bucket holds them all.
        Assert.Equal("histogram", m.Types["nbdfast_request_duration_seconds"]);
        foreach ((string command, int count) in new[] { ("write", Writes), ("read", Reads + 1), ("flush", 1), ("write_zeroes", 1) })
        {
            Assert.Equal(count, m.Value("nbdfast_request_duration_seconds_count", mine, ("nbd_command", command)));
            Assert.Equal(count, m.Value("nbdfast_request_duration_seconds_bucket", mine, ("nbd_command", command), ("le", "+Inf")));
            Assert.InRange(m.Value("nbdfast_request_duration_seconds_sum", mine, ("nbd_command", command)), double.Epsilon, 120.0);
        }
        Assert.Contains(m.WithLabel("nbd_export", export), s => s.Name == "nbdfast_request_duration_seconds_bucket" && s.Labels["le"] == "1E-05");

        Assert.Equal(1, m.Value("nbdfast_connections_total", mine));
        Assert.Equal(0, m.Value("nbdfast_connections_active", mine));
        Assert.Equal(0, m.Value("nbdfast_requests_active", mine));
    }

    [Theory]
    [InlineData("127.0.0.1:9464", "127.0.0.1", 9464)]
    [InlineData("[::1]:0", "::1", 0)]
    [InlineData("[::]:9464", "::", 9464)]
    [InlineData("0.0.0.0:9464", "0.0.0.0", 9464)]
    [InlineData("*:9464", "*", 9464)]
    [InlineData("localhost:80", "localhost", 80)]
    public void AddressesAreRead(string text, string host, int port) =>
        Assert.Equal((host, port), MetricsEndpoint.Parse(text));

    [Theory]
    [InlineData("9464")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":9464")]
    [InlineData("::1:9464")]
    [InlineData("[::1]")]
    [InlineData("[::1:9464")]
    [InlineData("[127.0.0.1]:9464")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    [InlineData("127.0.0.1:http")]
    [InlineData("bad host:9464")]
    public void MalformedAddressesAreRefused(string text) =>
        Assert.Throws<ArgumentException>(() => MetricsEndpoint.Start(text));

    [Theory(Timeout = TestTimeout)]
    [InlineData("[::1]:0", @"^http://\[::1\]:[1-9][0-9]*/metrics$")]
    [InlineData("localhost:0", @"^http://(127\.0\.0\.1|\[::1\]):[1-9][0-9]*/metrics$")]
    public async Task EphemeralPortIsServedAndReported(string address, string urlPattern)
    {
        using MetricsEndpoint endpoint = MetricsEndpoint.Start(address);
        Assert.Matches(urlPattern, endpoint.Url);
        PrometheusText scraped = await PrometheusText.ScrapeAsync(endpoint.Url);
        Assert.Contains(scraped.Samples, s => s.Name == "target_info" && s.Labels.GetValueOrDefault("service_name") == "nbdfast");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using HttpResponseMessage other = await http.GetAsync(endpoint.Url.Replace("/metrics", "/other", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task EveryInterfaceMeansIPv4AndIPv6()
    {
        using MetricsEndpoint endpoint = MetricsEndpoint.Start("*:0");
        int port = new Uri(endpoint.Url).Port;
        Assert.NotEqual(0, port);
        foreach (string host in new[] { "127.0.0.1", "[::1]" })
        {
            PrometheusText scraped = await PrometheusText.ScrapeAsync($"http://{host}:{port}/metrics");
            Assert.Contains(scraped.Samples, s => s.Name == "target_info");
        }
    }

    [Fact]
    public void PortInUseIsAnIOException()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        IOException e = Assert.Throws<IOException>(() => MetricsEndpoint.Start($"127.0.0.1:{port}"));
        Assert.Contains($"127.0.0.1:{port}", e.Message, StringComparison.Ordinal);
    }
}
