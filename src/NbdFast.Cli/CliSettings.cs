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
    int Verbosity);

/// <summary>A command-line mistake: reported as one line, exit status 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
