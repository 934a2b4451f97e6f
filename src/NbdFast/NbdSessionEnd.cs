namespace NbdFast;

/// <summary>Why a served connection ended (<see cref="NbdConnection.SessionEnd"/>), e.g. for a host's log line.</summary>
/// <remarks>The values mirror the transports' internal reasons one for one, in the same order.</remarks>
public enum NbdSessionEnd
{
    /// <summary>The client sent NBD_CMD_DISC.</summary>
    Disconnect,
    /// <summary>The client closed the connection or stopped accepting replies.</summary>
    ClientGone,
    /// <summary>The client broke the framing (bad magic, truncated header or payload, an undrainable payload).</summary>
    FramingLost,
    /// <summary>A write, trim or write-zeroes on a read-only export ended the session.</summary>
    ReadOnlyViolation,
    /// <summary>A graceful shutdown drained and flushed the session.</summary>
    Shutdown,
    /// <summary>No request arrived for <see cref="ServeOptions.IdleTimeout"/>.</summary>
    IdleTimeout,
    /// <summary>The host closed the connection while it was served.</summary>
    Aborted,
}
