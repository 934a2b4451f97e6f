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

    /// <summary>
    /// After a graceful shutdown has drained and flushed the session (see the cancellation token of
    /// <see cref="NbdConnection.ServeAsync(Devices.IBlockDevice, bool, ServeOptions?, CancellationToken)"/>),
    /// how long the session stays open answering NBD_ESHUTDOWN, giving the client time to notice and send
    /// NBD_CMD_DISC; then ServeAsync returns. Default 2 s; <see cref="TimeSpan.Zero"/> returns at once.
    /// </summary>
    public TimeSpan ShutdownLinger { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// End the session when no request has arrived for this long while nothing is in flight: the connection
    /// is closed and ServeAsync returns normally. A request in flight (a slow device, a client reading its
    /// replies slowly) keeps the session alive. Default <see cref="Timeout.InfiniteTimeSpan"/> (off).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>The defaults.</summary>
    public static ServeOptions Default { get; } = new();

    /// <summary>Checks the time spans (called by ServeAsync).</summary>
    internal void Validate()
    {
        if (ShutdownLinger < TimeSpan.Zero || ShutdownLinger.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(ShutdownLinger), ShutdownLinger, "The linger must be zero or positive (and under 24 days).");
        }
        if (IdleTimeout != Timeout.InfiniteTimeSpan && (IdleTimeout <= TimeSpan.Zero || IdleTimeout.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(IdleTimeout), IdleTimeout, "The idle timeout must be positive (and under 24 days), or Timeout.InfiniteTimeSpan.");
        }
    }
}
