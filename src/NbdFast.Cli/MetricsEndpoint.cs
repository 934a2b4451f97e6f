using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NbdFast.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace NbdFast.Cli;

/// <summary>
/// <c>--metrics ADDR:PORT</c>: serves the library's <see cref="NbdMetrics"/> at <c>GET /metrics</c> in the
/// Prometheus text format. The OpenTelemetry SDK aggregates the measurements and its ASP.NET Core Prometheus
/// exporter renders them, on a bare Kestrel (no routing, logging or configuration sources): the combination
/// OpenTelemetry recommends for production, and the one that binds IPv6 literals and port 0, which
/// System.Net.HttpListener (under both the HttpListener exporter and prometheus-net) cannot do on Linux.
/// </summary>
/// <remarks>
/// ADDR is an IPv4 address, an IPv6 address in brackets (<c>[::1]</c>), a host name (its first address is
/// used), or <c>*</c> for every interface, IPv4 and IPv6. Port 0 lets the kernel pick a free port;
/// <see cref="Url"/> says which.
/// </remarks>
internal sealed class MetricsEndpoint : IDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;

    private MetricsEndpoint(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The scrape URL with the port actually bound, such as <c>http://127.0.0.1:9464/metrics</c>.</summary>
    public string Url { get; }

    /// <summary>Starts serving; stop with <see cref="Dispose"/>.</summary>
    /// <param name="hostAndPort"><c>ADDR:PORT</c>, IPv6 in brackets; port 0 picks a free one.</param>
    /// <exception cref="ArgumentException"><paramref name="hostAndPort"/> is not ADDR:PORT.</exception>
    /// <exception cref="IOException">Nothing can listen there (address in use, not local, no permission, unknown host).</exception>
    public static MetricsEndpoint Start(string hostAndPort)
    {
        (string host, int port) = Parse(hostAndPort);
        IPAddress? address = host == "*" ? null : Resolve(host);

        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (address is null)
            {
                kestrel.ListenAnyIP(port);
            }
            else
            {
                kestrel.Listen(address, port);
            }
        });
        // nbdfast handles SIGINT/SIGTERM itself; the default console lifetime would also stop this host on them.
        builder.Services.AddSingleton<IHostLifetime, NoSignalsLifetime>();
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("nbdfast", serviceVersion: typeof(MetricsEndpoint).Assembly.GetName().Version?.ToString()))
            .WithMetrics(metrics => metrics
                .AddMeter(NbdMetrics.MeterName)
                .AddPrometheusExporter(options =>
                {
                    // Every scrape sees the counters as they are now (the default serves a copy up to 300 ms old).
                    options.ScrapeResponseCacheDurationMilliseconds = 0;
                    // One meter: an otel_scope_name label on every series would say nothing.
                    options.ScopeInfoEnabled = false;
                }));
        WebApplication app = builder.Build();
        app.UseOpenTelemetryPrometheusScrapingEndpoint();
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidOperationException)
        {
            ((IDisposable)app).Dispose();
            // Kestrel reports a taken port as an IOException whose inner SocketException says why.
            throw new IOException($"cannot serve metrics on {hostAndPort}: {(e.InnerException ?? e).Message}", e);
        }
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? $"http://{hostAndPort}";
        return new MetricsEndpoint(app, $"{bound.TrimEnd('/')}/metrics");
    }

    /// <summary>Splits <c>ADDR:PORT</c>; the host comes back without brackets, <c>*</c> for every interface.</summary>
    internal static (string Host, int Port) Parse(string hostAndPort)
    {
        ArgumentNullException.ThrowIfNull(hostAndPort);
        int colon = hostAndPort.LastIndexOf(':');
        string host = colon > 0 ? hostAndPort[..colon] : string.Empty;
        string portText = colon >= 0 ? hostAndPort[(colon + 1)..] : string.Empty;
        if (host.Length == 0 || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > IPEndPoint.MaxPort)
        {
            throw new ArgumentException($"--metrics wants ADDR:PORT (for example 127.0.0.1:9464 or [::1]:9464), not '{hostAndPort}'", nameof(hostAndPort));
        }
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']') || !IPAddress.TryParse(host[1..^1], out IPAddress? v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw new ArgumentException($"--metrics: '{host}' is not an IPv6 address in brackets", nameof(hostAndPort));
            }
            return (v6.ToString(), port);
        }
        if (host.Contains(':'))
        {
            throw new ArgumentException($"--metrics: put an IPv6 address in brackets, as in [{host}]:{portText}", nameof(hostAndPort));
        }
        if (host != "*" && Uri.CheckHostName(host) == UriHostNameType.Unknown)
        {
            throw new ArgumentException($"--metrics: '{host}' is not an address or host name", nameof(hostAndPort));
        }
        return (host, port);
    }

    private static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out IPAddress? literal))
        {
            return literal;
        }
        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault() ?? throw new IOException($"cannot serve metrics on {host}: it has no address");
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot serve metrics on {host}: {e.Message}", e);
        }
    }

    /// <summary>Stops serving (scrapes in progress get a few seconds to finish).</summary>
    public void Dispose()
    {
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            _app.StopAsync(timeout.Token).GetAwaiter().GetResult();
        }
        finally
        {
            ((IDisposable)_app).Dispose();
        }
    }

    /// <summary>A host lifetime that leaves the process's signals alone.</summary>
    private sealed class NoSignalsLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
