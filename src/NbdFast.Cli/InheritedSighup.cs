using System.Runtime.InteropServices;

namespace NbdFast.Cli;

/// <summary>
/// nohup (and some supervisors) start their command with SIGHUP ignored, and the .NET runtime installs no handler for
/// a signal it finds ignored: a <see cref="PosixSignalRegistration"/> for it never runs, so
/// <c>nohup nbdfast --config FILE</c> would never reload. Resetting the inherited SIG_IGN to the default just before
/// registering lets the runtime install its handler. The hang-up protection nohup asked for stays: the SIGHUP handler
/// cancels the default action, so a hang-up reloads (or is logged as ignored) and never ends the server.
/// </summary>
internal static class InheritedSighup
{
    private const int SigHup = 1;
    private const nint SigDfl = 0;
    private const nint SigIgn = 1;

    /// <summary>
    /// Resets SIGHUP to its default action when the process started with it ignored. Call right before registering the
    /// SIGHUP handler: a hang-up arriving in between meets the default action.
    /// </summary>
    public static void Reclaim()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        // sigaction with no new action only reads the current one.
        if (sigaction(SigHup, 0, out SigactionBuffer current) == 0 && current.Handler == SigIgn)
        {
            signal(SigHup, SigDfl);
        }
    }

    /// <summary>Room for any libc's struct sigaction; its handler is the first field on Linux and macOS alike.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct SigactionBuffer
    {
        public nint Handler;
    }

#pragma warning disable SYSLIB1054 // a blittable DllImport needs no generated marshalling (and no unsafe code in the CLI)
    [DllImport("libc")]
    private static extern int sigaction(int signal, nint newAction, out SigactionBuffer oldAction);

    [DllImport("libc")]
    private static extern nint signal(int signal, nint handler);
#pragma warning restore SYSLIB1054
}
