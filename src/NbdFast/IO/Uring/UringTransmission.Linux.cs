using System.Net.Sockets;
using NbdFast.Transmission;

namespace NbdFast.IO.Uring;

/// <summary>Hands a negotiated connection to a reactor and waits until the reactor has closed it.</summary>
internal static class UringTransmission
{
    /// <summary>Posts the connection to the next reactor; its <see cref="UringConnection.Completion"/> says when it closed.</summary>
    public static UringConnection Start(NbdUringEngine engine, Socket socket, TransmissionContext context)
    {
        Reactor reactor = engine.NextReactor();
        var connection = new UringConnection(reactor, socket, context);
        reactor.Post(connection);
        return connection;
    }

    /// <summary>Waits for the connection to close; <paramref name="shutdown"/> starts a graceful shutdown.</summary>
    public static async Task<SessionEnd> RunAsync(UringConnection connection, CancellationToken shutdown)
    {
        using CancellationTokenRegistration stop = shutdown.Register(static c => ((UringConnection)c!).RequestStop(), connection);
        return await connection.Completion.ConfigureAwait(false);
    }
}
