namespace NbdFast;

/// <summary>Limits that protect the handshake against abuse. The defaults follow qemu and nbdkit.</summary>
public sealed record NegotiationOptions
{
    /// <summary>Largest option payload accepted; a longer one closes the connection unread. Default 64 KiB.</summary>
    public int MaxOptionLength { get; init; } = 64 * 1024;

    /// <summary>Most options a client may send before choosing an export (plus this many per listed export). Default 32.</summary>
    public int MaxOptions { get; init; } = 32;

    /// <summary>Time allowed from connection to the chosen export. Default 10 s; <see cref="Timeout.InfiniteTimeSpan"/> turns it off.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// When the host cancels <see cref="NbdServer.ConnectAsync"/> (shutdown), how long the server waits for the
    /// client's next option to answer it with NBD_REP_ERR_SHUTDOWN before it simply closes. Default 1 s.
    /// </summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The defaults.</summary>
    public static NegotiationOptions Default { get; } = new();
}
