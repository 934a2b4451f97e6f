using System.Net.Sockets;
using NbdFast.Transmission;

namespace NbdFast.IO.Uring;

/// <summary>Hands a negotiated connection to a reactor and waits until the reactor has closed it.</summary>
internal static class UringTransmission
{
    public static async Task<SessionEnd> RunAsync(NbdUringEngine engine, Socket socket, TransmissionContext context, CancellationToken cancellationToken)
    {
        Reactor reactor = engine.NextReactor();
        var connection = new UringConnection(reactor, socket, context);
        reactor.Post(connection);
        using CancellationTokenRegistration stop = cancellationToken.Register(static c => ((UringConnection)c!).RequestStop(), connection);
        return await connection.Completion.ConfigureAwait(false);
    }
}
