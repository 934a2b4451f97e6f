namespace NbdFast.Cli.Exports;

/// <summary>
/// One export as the operator described it (command line or config file), before anything is opened.
/// Exactly one of <see cref="Path"/> and <see cref="MemorySize"/> is set.
/// </summary>
internal sealed record ExportSpec
{
    /// <summary>The name clients ask for ("" is the default export).</summary>
    public required string Name { get; init; }

    /// <summary>File or block device to serve.</summary>
    public string? Path { get; init; }

    /// <summary>Size of a RAM disk, when the export is in memory.</summary>
    public long? MemorySize { get; init; }

    /// <summary>Clients may write (the default is read-only).</summary>
    public bool Writable { get; init; }

    /// <summary>Open the file with O_DIRECT.</summary>
    public bool Direct { get; init; }

    /// <summary>Shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.</summary>
    public string? Description { get; init; }

    /// <summary>With --tls=on: hidden and refused until the client starts TLS.</summary>
    public bool TlsOnly { get; init; }

    /// <summary>First byte of the backing store that the export shows (a partition's start).</summary>
    public long Offset { get; init; }

    /// <summary>Bytes shown from <see cref="Offset"/>; null means to the end of the backing store.</summary>
    public long? Size { get; init; }

    /// <summary>Writes go to a temporary copy-on-write overlay discarded when the last client leaves.</summary>
    public bool Snapshot { get; init; }

    /// <summary>Most clients served on this export at once; null means only the global limit applies.</summary>
    public int? MaxConnections { get; init; }

    /// <summary>What a log line calls the backing store.</summary>
    public string Source => Path ?? $"a {MemorySize}-byte RAM disk";

    /// <summary>How clients may use it: "read-only", "read-write" or "snapshot".</summary>
    public string Access => Snapshot ? "copy-on-write snapshot" : Writable ? "read-write" : "read-only";

    /// <summary>Clients see a writable device.</summary>
    public bool ClientsMayWrite => Writable || Snapshot;
}
