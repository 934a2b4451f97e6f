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

    /// <summary>The defaults.</summary>
    public static NegotiationOptions Default { get; } = new();
}
