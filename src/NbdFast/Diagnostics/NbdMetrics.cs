using System.Diagnostics.Metrics;

namespace NbdFast.Diagnostics;

/// <summary>
/// The library's metrics, published through <see cref="System.Diagnostics.Metrics"/> on one meter named
/// <see cref="MeterName"/>. Nothing is recorded (and nothing costs more than a few field reads per request)
/// until a listener subscribes: an OpenTelemetry <c>MeterProvider</c> with <c>.AddMeter(NbdMetrics.MeterName)</c>,
/// a <see cref="MeterListener"/>, or <c>dotnet-counters monitor --counters NbdFast</c>.
/// </summary>
/// <remarks>
/// <para>Every instrument carries <see cref="ExportTag"/>; request instruments also carry <see cref="CommandTag"/>
/// (<c>read</c>, <c>write</c>, <c>flush</c>, <c>trim</c>, <c>cache</c>, <c>write_zeroes</c>, <c>block_status</c>, or
/// <c>unknown</c>), and <see cref="ErrorsInstrument"/> carries <see cref="ErrorTag"/> (the NBD error's name, such as
/// <c>EINVAL</c>). Both transports (io_uring and streams, TLS included) record identically.</para>
/// <para>A request is counted, timed and its bytes added when its reply has been handed to the socket, so a
/// request whose client vanished before the reply could be sent is not counted. Its duration runs from the
/// moment its header was parsed to that point.</para>
/// </remarks>
public static class NbdMetrics
{
    /// <summary>The meter's name: <c>NbdFast</c>.</summary>
    public const string MeterName = "NbdFast";

    /// <summary>Counter of connections that entered the transmission phase (unit <c>{connection}</c>).</summary>
    public const string ConnectionsInstrument = "nbdfast.connections";

    /// <summary>Up-down counter of connections in the transmission phase now (unit <c>{connection}</c>).</summary>
    public const string ActiveConnectionsInstrument = "nbdfast.connections.active";

    /// <summary>Counter of answered requests (unit <c>{request}</c>), failed ones included.</summary>
    public const string RequestsInstrument = "nbdfast.requests";

    /// <summary>
    /// Up-down counter of requests being executed or having their reply sent (unit <c>{request}</c>). A request
    /// refused by validation is answered at once by the reader and never counts as in flight.
    /// </summary>
    public const string ActiveRequestsInstrument = "nbdfast.requests.active";

    /// <summary>Histogram of request durations in seconds, from header parsed to reply handed to the socket.</summary>
    public const string RequestDurationInstrument = "nbdfast.request.duration";

    /// <summary>Counter of payload bytes moved by successful reads and writes (unit <c>By</c>).</summary>
    public const string IoInstrument = "nbdfast.io";

    /// <summary>Counter of requests answered with an error (unit <c>{request}</c>).</summary>
    public const string ErrorsInstrument = "nbdfast.errors";

    /// <summary>Tag: the export name the client chose (empty for the default export).</summary>
    public const string ExportTag = "nbd.export";

    /// <summary>Tag: the request's command, lower case with underscores (<c>write_zeroes</c>).</summary>
    public const string CommandTag = "nbd.command";

    /// <summary>Tag: the NBD error a request was answered with (<c>EPERM</c>, <c>EIO</c>, <c>EINVAL</c>, ...).</summary>
    public const string ErrorTag = "nbd.error";

    /// <summary>
    /// Bucket boundaries of <see cref="RequestDurationInstrument"/>, in seconds: 10 µs to 10 s. NBD requests to
    /// memory or a page cache finish in microseconds, so the usual millisecond-first defaults would put almost
    /// every request in the first bucket.
    /// </summary>
    public static IReadOnlyList<double> DurationBuckets => s_durationBuckets;

    private static readonly double[] s_durationBuckets =
        [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    internal static readonly Meter Meter = new(MeterName, typeof(NbdMetrics).Assembly.GetName().Version?.ToString());

    internal static readonly Counter<long> Connections = Meter.CreateCounter<long>(
        ConnectionsInstrument, "{connection}", "Connections that entered the transmission phase.");

    internal static readonly UpDownCounter<long> ActiveConnections = Meter.CreateUpDownCounter<long>(
        ActiveConnectionsInstrument, "{connection}", "Connections in the transmission phase now.");

    internal static readonly Counter<long> Requests = Meter.CreateCounter<long>(
        RequestsInstrument, "{request}", "Requests answered, failed ones included.");

    internal static readonly UpDownCounter<long> ActiveRequests = Meter.CreateUpDownCounter<long>(
        ActiveRequestsInstrument, "{request}", "Requests being executed or having their reply sent.");

    internal static readonly Histogram<double> RequestDuration = Meter.CreateHistogram(
        RequestDurationInstrument, "s", "Time from a request's header being parsed to its reply being handed to the socket.",
        tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_durationBuckets });

    internal static readonly Counter<long> Io = Meter.CreateCounter<long>(
        IoInstrument, "By", "Payload bytes moved by successful reads and writes.");

    internal static readonly Counter<long> Errors = Meter.CreateCounter<long>(
        ErrorsInstrument, "{request}", "Requests answered with an error.");

    /// <summary>Any request instrument has a listener: worth taking a timestamp for the request.</summary>
    internal static bool RequestsObserved =>
        Requests.Enabled || RequestDuration.Enabled || ActiveRequests.Enabled || Io.Enabled || Errors.Enabled;
}
