using System.Net.Sockets;
using NbdFast.Transmission;

namespace NbdFast.IO.Uring;

/// <summary>Hands a negotiated connection to a reactor and waits until the reactor has closed it.</summary>
internal static class UringTransmission
{
    /// <summary>A connection for the next reactor; <see cref="RunAsync"/> hands it over.</summary>
    public static UringConnection Create(NbdUringEngine engine, Socket socket, TransmissionContext context) =>
        new(engine.NextReactor(), socket, context);

    /// <summary>
    /// Hands the connection to its reactor and waits for it to close; <paramref name="shutdown"/> starts a graceful
    /// shutdown. The token is registered before the reactor adopts the connection, so no request can be parsed
    /// before a cancellation that already happened is visible.
    /// </summary>
    public static async Task<SessionEnd> RunAsync(UringConnection connection, CancellationToken shutdown)
    {
        using CancellationTokenRegistration stop = shutdown.Register(static c => ((UringConnection)c!).RequestStop(), connection);
        connection.Reactor.Post(connection);
        return await connection.Completion.ConfigureAwait(false);
    }
}
