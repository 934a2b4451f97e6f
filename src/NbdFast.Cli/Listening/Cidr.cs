using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace NbdFast.Cli.Listening;

/// <summary>
/// An address block such as 10.0.0.0/8 or fd00::/8, compared on binary addresses. IPv4 blocks also match
/// IPv4-mapped IPv6 peers (::ffff:10.1.2.3), which is how a dual-stack listener reports IPv4 clients; a textual
/// comparison would get that wrong (CVE-2013-6410 in nbd-server).
/// </summary>
internal readonly record struct Cidr(IPAddress Network, int PrefixLength)
{
    public static Cidr Parse(string text)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        string addressText = (slash < 0 ? text : text[..slash]).Trim('[', ']');
        if (!IPAddress.TryParse(addressText, out IPAddress? address))
        {
            throw new UsageException($"--allow: '{text}' is not an address or ADDRESS/PREFIX");
        }
        address = Normalize(address);
        int maxPrefix = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int prefix = maxPrefix;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > maxPrefix))
        {
            throw new UsageException($"--allow: '{text}' has a prefix length outside 0..{maxPrefix}");
        }
        return new Cidr(address, prefix);
    }

    public bool Contains(IPAddress peer)
    {
        peer = Normalize(peer);
        if (peer.AddressFamily != Network.AddressFamily)
        {
            return false;
        }
        Span<byte> peerBytes = stackalloc byte[16];
        Span<byte> networkBytes = stackalloc byte[16];
        peer.TryWriteBytes(peerBytes, out int length);
        Network.TryWriteBytes(networkBytes, out _);
        int fullBytes = PrefixLength / 8;
        if (!peerBytes[..fullBytes].SequenceEqual(networkBytes[..fullBytes]))
        {
            return false;
        }
        int remainingBits = PrefixLength % 8;
        if (remainingBits == 0 || fullBytes >= length)
        {
            return true;
        }
        int mask = 0xFF << (8 - remainingBits) & 0xFF;
        return (peerBytes[fullBytes] & mask) == (networkBytes[fullBytes] & mask);
    }

    public override string ToString() => $"{Network}/{PrefixLength}";

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
