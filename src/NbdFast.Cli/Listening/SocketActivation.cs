using System.Globalization;
using System.Net.Sockets;

namespace NbdFast.Cli.Listening;

/// <summary>
/// systemd socket activation: listening sockets inherited as fds 3.. when LISTEN_PID is our pid and LISTEN_FDS
/// says how many (any mix of TCP and unix sockets, as the .socket unit declares).
/// </summary>
internal static class SocketActivation
{
    private const int FirstFd = 3;

    /// <summary>True when systemd passed sockets to this process.</summary>
    public static bool IsActive =>
        Environment.GetEnvironmentVariable("LISTEN_PID") is string pid &&
        pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture) &&
        Environment.GetEnvironmentVariable("LISTEN_FDS") is not null;

    /// <summary>Adopts the passed sockets and clears the variables so children do not see them.</summary>
    public static List<Socket> TakeSockets()
    {
        string text = Environment.GetEnvironmentVariable("LISTEN_FDS") ?? "0";
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count is < 1 or > 1024)
        {
            throw new UsageException($"socket activation: LISTEN_FDS='{text}' is not a number of sockets");
        }
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        var sockets = new List<Socket>(count);
        try
        {
            for (int fd = FirstFd; fd < FirstFd + count; fd++)
            {
                var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                if (socket.SocketType != SocketType.Stream)
                {
                    socket.Dispose();
                    throw new UsageException($"socket activation: fd {fd} is not a stream socket");
                }
                sockets.Add(socket);
            }
            return sockets;
        }
        catch (SocketException e)
        {
            sockets.ForEach(s => s.Dispose());
            throw new UsageException($"socket activation: {e.Message}");
        }
    }
}
