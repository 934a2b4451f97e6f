namespace NbdFast.Cli.Listening;

/// <summary>Where to listen and whom to let in.</summary>
internal sealed record ListenerSettings
{
    public int Port { get; init; } = 10809;

    /// <summary>TCP addresses (IPv4 and IPv6); none means every address when there is no other listener.</summary>
    public IReadOnlyList<string> BindAddresses { get; init; } = [];

    /// <summary>Unix socket paths.</summary>
    public IReadOnlyList<string> UnixSockets { get; init; } = [];

    /// <summary>Permission bits for the unix sockets (e.g. 0660); null keeps the umask's.</summary>
    public UnixFileMode? UnixMode { get; init; }

    /// <summary>USER[:GROUP] (names or numbers) to own the unix sockets.</summary>
    public string? UnixOwner { get; init; }

    /// <summary>TCP peers allowed in; empty allows every peer. Unix socket peers are always allowed.</summary>
    public IReadOnlyList<Cidr> Allow { get; init; } = [];
}
