using System.Runtime.InteropServices;
namespace NbdFast.Cli;

/// <summary>SIGINT/SIGTERM shut the server down (twice: at once); SIGHUP reloads the config.</summary>
internal sealed class SignalHandler : IDisposable
{
    private readonly PosixSignalRegistration[] _registrations;

    public SignalHandler(ServerApp app)
    {
        InheritedSighup.Reclaim();
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Shutdown(app, context)),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Shutdown(app, context)),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                _ = Task.Run(app.ReloadAsync);
            }),
        ];
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private static void Shutdown(ServerApp app, PosixSignalContext context)
    {
        context.Cancel = true;
        app.RequestShutdown();
    }
}
