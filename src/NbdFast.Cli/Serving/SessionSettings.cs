namespace NbdFast.Cli.Serving;

/// <summary>What every client session shares: the library options built once from the command line.</summary>
internal sealed record SessionSettings(NegotiationOptions Negotiation, ServeOptions Serve, bool NoList, NbdUringEngine? Uring, NbdTlsOptions? Tls)
{
    public static SessionSettings From(CliSettings settings, NbdUringEngine? uring, NbdTlsOptions? tls) => new(
        new NegotiationOptions { HandshakeTimeout = settings.Limits.HandshakeTimeout },
        new ServeOptions
        {
            MaxInFlightRequests = settings.Limits.MaxInFlightRequests,
            MaxInFlightBytes = settings.Limits.MaxInFlightBytes,
            IdleTimeout = settings.Limits.IdleTimeout,
        },
        settings.NoList,
        uring,
        tls);
}
