namespace NbdFast;

/// <summary>Per-connection limits and policies of the transmission phase.</summary>
public sealed record ServeOptions
{
    /// <summary>Requests in flight at once before the server stops reading the socket. Default 64.</summary>
    public int MaxInFlightRequests { get; init; } = 64;

    /// <summary>Payload bytes (write data and read buffers) in flight at once before the server stops reading. Default 64 MiB.</summary>
    public long MaxInFlightBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// A WRITE longer than the maximum payload but at most this long is drained and answered with EOVERFLOW;
    /// a longer one closes the connection. Default 64 MiB.
    /// </summary>
    public long MaxDrainedPayload { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// What a write, trim or write-zeroes on a read-only export does after its EPERM reply: end the session
    /// (true, the default, as the seed API specifies) or carry on (as nbdkit does).
    /// </summary>
    public bool EndSessionOnReadOnlyWrite { get; init; } = true;

    /// <summary>Most extents in one block status reply. Default 2048.</summary>
    public int MaxExtentsPerReply { get; init; } = 2048;

    /// <summary>The defaults.</summary>
    public static ServeOptions Default { get; } = new();
}
