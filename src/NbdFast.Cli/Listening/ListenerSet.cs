using System.Net;
using System.Net.Sockets;

namespace NbdFast.Cli.Listening;

/// <summary>Opens the listening sockets: systemd's when socket-activated, else every -b address and -U path.</summary>
internal static class ListenerSet
{
    public static List<Socket> Open(ListenerSettings settings)
    {
        if (SocketActivation.IsActive)
        {
            return SocketActivation.TakeSockets();
        }
        var sockets = new List<Socket>();
        try
        {
            foreach (string path in settings.UnixSockets)
            {
                sockets.Add(UnixListener.Open(path, settings.UnixMode, settings.UnixOwner));
            }
            if (settings.BindAddresses.Count == 0 && settings.UnixSockets.Count == 0)
            {
                sockets.Add(OpenTcp(Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any, settings.Port));
            }
            foreach (string address in settings.BindAddresses)
            {
                sockets.Add(OpenTcp(ParseAddress(address), settings.Port));
            }
            return sockets;
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            throw;
        }
    }

    /// <summary>Accepts what -b takes: an IPv4 or IPv6 address (brackets optional) or localhost.</summary>
    public static bool TryParseAddress(string text, out IPAddress address)
    {
        if (text == "localhost")
        {
            address = IPAddress.Loopback;
            return true;
        }
        return IPAddress.TryParse(text.Trim('[', ']'), out address!);
    }

    public static string Describe(Socket socket) => socket.LocalEndPoint switch
    {
        UnixDomainSocketEndPoint unix => "unix:" + unix,
        IPEndPoint ip => ip.ToString(),
        var other => other?.ToString() ?? "?",
    };

    private static IPAddress ParseAddress(string text) =>
        TryParseAddress(text, out IPAddress address) ? address : throw new UsageException($"--bind: '{text}' is not an IP address");

    private static Socket OpenTcp(IPAddress address, int port)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                // :: serves IPv4 too; a specific IPv6 address must not clash with a separate IPv4 -b.
                socket.DualMode = address.Equals(IPAddress.IPv6Any);
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
}
