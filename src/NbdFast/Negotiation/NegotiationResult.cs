namespace NbdFast.Negotiation;

/// <summary>Which reply to the client's final option is still owed when ConnectAsync returns.</summary>
internal enum PendingExportReply
{
    /// <summary>The export was resolved and its reply already sent: transmission has begun.</summary>
    None,
    /// <summary>NBD_OPT_GO: the INFO set and ACK are sent by ServeAsync, which knows the device.</summary>
    Go,
    /// <summary>NBD_OPT_EXPORT_NAME: size and flags are sent by ServeAsync.</summary>
    ExportName,
}

/// <summary>The outcome of option haggling: the chosen name and everything transmission needs.</summary>
internal sealed record NegotiationResult(
    string ExportName,
    NegotiatedFeatures Features,
    NbdExport? Export,
    PendingExportReply Pending,
    InfoRequests InfoRequests)
{
    /// <summary>The stream the rest of the session uses (a TLS stream after STARTTLS).</summary>
    public Stream Transport { get; init; } = Stream.Null;

    /// <summary>STARTTLS succeeded.</summary>
    public bool TlsActive { get; init; }
}
