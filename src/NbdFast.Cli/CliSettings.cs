using Microsoft.Extensions.Logging;
using NbdFast.Cli.Exports;
using NbdFast.Cli.Listening;

namespace NbdFast.Cli;

/// <summary>The validated command line.</summary>
internal sealed record CliSettings
{
    /// <summary>The exports from the command line, or from <see cref="ConfigPath"/> when one is given.</summary>
    public required IReadOnlyList<ExportSpec> Exports { get; init; }

    /// <summary>The JSON config file, re-read on SIGHUP.</summary>
    public string? ConfigPath { get; init; }

    public required ListenerSettings Listen { get; init; }

    public required Limits Limits { get; init; }

    public bool NoList { get; init; }

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    public IoMode Io { get; init; }

    public int Threads { get; init; } = 1;

    public TlsSetting Tls { get; init; }

    public string? TlsCertificates { get; init; }

    public bool TlsVerifyPeer { get; init; }

    public IReadOnlyList<string> TlsAllowClients { get; init; } = [];

    public string? TlsPsk { get; init; }

    /// <summary>ADDR:PORT of the Prometheus endpoint.</summary>
    public string? Metrics { get; init; }

    public string? PidFile { get; init; }

    /// <summary>How long a graceful shutdown may take before connections are closed hard.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Connection and request limits (defaults from the reliability research, §e).</summary>
internal sealed record Limits
{
    /// <summary>Clients connected at once, handshaking or served.</summary>
    public int MaxConnections { get; init; } = 100;

    /// <summary>Clients still in the handshake at once (before they chose an export).</summary>
    public int MaxHandshakes { get; init; } = 16;

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time without requests after which a served client is disconnected; infinite is off.</summary>
    public TimeSpan IdleTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    public int MaxInFlightRequests { get; init; } = 64;

    public long MaxInFlightBytes { get; init; } = 64L * 1024 * 1024;
}

/// <summary>nbdkit's --tls: off, on (clients choose), require (FORCEDTLS).</summary>
internal enum TlsSetting
{
    Off,
    On,
    Require,
}

/// <summary>Which transport serves the transmission phase.</summary>
internal enum IoMode
{
    /// <summary>io_uring when the kernel allows it, else sockets.</summary>
    Auto,
    /// <summary>io_uring or fail.</summary>
    Uring,
    /// <summary>The portable socket transport.</summary>
    Sockets,
}

/// <summary>A command-line mistake: reported as one line, exit status 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
