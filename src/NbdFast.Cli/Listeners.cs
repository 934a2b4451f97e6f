using System.Net;
using System.Net.Sockets;

namespace NbdFast.Cli;

/// <summary>Creates the listening sockets the settings ask for.</summary>
internal static class Listeners
{
    public static List<Socket> Open(CliSettings settings)
    {
        var sockets = new List<Socket>();
        try
        {
            if (settings.UnixSocket is string path)
            {
                sockets.Add(OpenUnix(path));
            }
            else if (settings.BindAddresses.Count == 0)
            {
                sockets.Add(OpenTcp(Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any, settings.Port));
            }
            else
            {
                foreach (string address in settings.BindAddresses)
                {
                    IPAddress ip = address == "localhost" ? IPAddress.Loopback : IPAddress.Parse(address.Trim('[', ']'));
                    sockets.Add(OpenTcp(ip, settings.Port));
                }
            }
            return sockets;
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            throw;
        }
    }

    public static string Describe(Socket socket) => socket.LocalEndPoint switch
    {
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        IPEndPoint ip => ip.ToString(),
        var other => other?.ToString() ?? "?",
    };

    private static Socket OpenTcp(IPAddress address, int port)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket OpenUnix(string path)
    {
        // A socket left by a previous run would make bind fail; anything else at that path is kept.
        if (NbdFast.IO.Posix.PosixFile.IsSocket(path))
        {
            File.Delete(path);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
