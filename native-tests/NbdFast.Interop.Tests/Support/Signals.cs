using System.Runtime.InteropServices;

namespace NbdFast.Interop.Tests.Support;

/// <summary>kill(2), to send SIGTERM/SIGINT/SIGHUP to a child process.</summary>
public static class Signals
{
    public const int SigHup = 1;
    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    public static void Send(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {errno}");
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
