using System.Net;
using System.Net.Sockets;

namespace NbdFast.Cli.Listening;

/// <summary>Decides at accept time, before any NBD byte, whether a peer may connect.</summary>
internal sealed class PeerFilter(IReadOnlyList<Cidr> allow)
{
    public bool Allows(Socket client)
    {
        if (allow.Count == 0 || client.RemoteEndPoint is not IPEndPoint peer)
        {
            return true; // no rules, or a unix socket peer (file permissions guard those)
        }
        foreach (Cidr rule in allow)
        {
            if (rule.Contains(peer.Address))
            {
                return true;
            }
        }
        return false;
    }
}
