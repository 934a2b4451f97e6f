using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// Once "nbdfast: serving" is on stderr, signals are handled: a SIGHUP or SIGTERM sent the moment the line
/// appears must not meet the default action (which kills the process). Several rounds, as the window is short.
/// </summary>
public sealed class SignalReadinessTests
{
    private const int Rounds = 8;

    [Fact(Timeout = 60_000)]
    public async Task SighupRightAfterTheServingLine_IsHandled()
    {
        for (int round = 0; round < Rounds; round++)
        {
            using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M");
            Signals.Send(server.Pid, Signals.SigHup);

            await server.WaitForStderrAsync("SIGHUP ignored", TimeSpan.FromSeconds(15));
            Assert.Equal(0, await server.StopAsync());
        }
    }

    /// <summary>
    /// nohup starts nbdfast with SIGHUP ignored, and the runtime registers no handler for an ignored signal: the
    /// server must take the signal back, so a hang-up is handled (logged here, a reload with --config) and the
    /// server carries on serving.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task SighupUnderNohup_IsHandledAndTheServerCarriesOn()
    {
        int port = NbdfastProcess.FreeTcpPort();
        string portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using NbdfastProcess server = NbdfastProcess.StartLaunched(["nohup"], ["--memory", "1M", "-b", "127.0.0.1", "-p", portText], port);
        await server.WaitForStderrAsync("nbdfast: serving");

        Signals.Send(server.Pid, Signals.SigHup);
        await server.WaitForStderrAsync("SIGHUP ignored", TimeSpan.FromSeconds(15));

        await Clients.AssertServedAsync(Clients.Tcp(port), server);
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact(Timeout = 60_000)]
    public async Task SigtermRightAfterTheServingLine_IsAGracefulExit()
    {
        for (int round = 0; round < Rounds; round++)
        {
            using NbdfastProcess server = await NbdfastProcess.StartTcpAsync("--memory", "1M");

            int status = await server.StopAsync(Signals.SigTerm);

            Assert.True(status == 0, $"round {round}: exit status {status}\n--- stderr ---\n{server.Stderr}");
            Assert.Contains("nbdfast: stopped", server.Stderr, StringComparison.Ordinal);
        }
    }
}
