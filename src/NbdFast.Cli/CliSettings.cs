namespace NbdFast.Cli;

/// <summary>The validated command line.</summary>
internal sealed record CliSettings(
    string? File,
    long? MemorySize,
    bool Writable,
    int Port,
    IReadOnlyList<string> BindAddresses,
    string? UnixSocket,
    string ExportName,
    string? Description,
    bool NoList,
    int Verbosity,
    IoMode Io,
    int Threads,
    bool Direct,
    TlsSetting Tls,
    string? TlsCertificates,
    bool TlsVerifyPeer,
    IReadOnlyList<string> TlsAllowClients,
    string? TlsPsk = null);

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
