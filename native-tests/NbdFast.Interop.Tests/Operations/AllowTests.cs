using System.Globalization;
using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// --allow CIDR: a denied TCP peer is closed before the server sends a byte, allowed ones on the same server are
/// served, IPv4 rules do not admit IPv6 peers (and the reverse), IPv4 peers on a dual-stack listener match IPv4
/// rules, and unix socket peers are never filtered.
/// </summary>
public sealed class AllowTests
{
    private const int TestTimeout = 60_000;

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Connects raw and counts what the server sends before closing: 0 for a peer closed before the handshake.</summary>
    private static async Task<int> GreetingBytesAsync(IPAddress address, int port)
    {
        using var client = new TcpClient(address.AddressFamily);
        await client.ConnectAsync(address, port);
        return await Clients.BytesUntilClosedAsync(client, TimeSpan.FromSeconds(15));
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("10.0.0.0/8", false, false)]
    [InlineData("127.0.0.0/8", true, false)]
    [InlineData("::1", false, true)]
    [InlineData("fe80::/10", false, false)]
    [InlineData("127.0.0.1,::1/128", true, true)]
    [InlineData("0.0.0.0/0", true, false)]
    public async Task Allow_AdmitsOnlyMatchingPeers_AndNeverFiltersUnixPeers(string rules, bool ipv4Allowed, bool ipv6Allowed)
    {
        using var temp = new TempDirectory();
        string socket = temp.File("nbd.sock");
        string[] allow = [.. rules.Split(',').SelectMany(rule => new[] { "--allow", rule })];
        using NbdfastProcess server = await NbdfastProcess.StartOnFreePortAsync(
            port => ["--memory", "1M", "-b", "127.0.0.1", "-b", "::1", "-U", socket, "-p", Text(port), .. allow], socket);
        int port = server.Port!.Value;

        foreach ((string uri, bool allowed) in new[] { (Clients.Tcp(port), ipv4Allowed), (Clients.Tcp6(port), ipv6Allowed) })
        {
            if (allowed)
            {
                await Clients.AssertServedAsync(uri, server);
            }
            else
            {
                await Clients.AssertRefusedAsync(uri, server);
            }
        }
        await Clients.AssertServedAsync(Clients.Unix(socket), server);

        int denied = (ipv4Allowed ? 0 : 1) + (ipv6Allowed ? 0 : 1);
        Assert.Equal(denied, server.CountStderrLines("not allowed by --allow"));
        if (!ipv4Allowed)
        {
            Assert.Contains("refused 127.0.0.1:", server.Stderr, StringComparison.Ordinal);
            // Closed before the handshake: not even the 18-byte greeting.
            Assert.Equal(0, await GreetingBytesAsync(IPAddress.Loopback, port));
        }
        else
        {
            Assert.Equal(18, await GreetingBytesAndHangUpAsync(IPAddress.Loopback, port));
        }
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData("127.0.0.0/8", true)]
    [InlineData("10.0.0.0/8", false)]
    [InlineData("::ffff:127.0.0.1", true)]
    public async Task DualStackListener_Ipv4PeersMatchIpv4Rules(string rule, bool allowed)
    {
        // No -b: one [::] socket serves IPv4 too, and sees 127.0.0.1 as ::ffff:127.0.0.1.
        using NbdfastProcess server = await NbdfastProcess.StartOnFreePortAsync(
            port => ["--memory", "1M", "-p", Text(port), "--allow", rule]);
        Assert.Contains($"[::]:{server.Port}", server.Stderr, StringComparison.Ordinal);

        if (allowed)
        {
            await Clients.AssertServedAsync(Clients.Tcp(server.Port!.Value), server);
        }
        else
        {
            await Clients.AssertRefusedAsync(Clients.Tcp(server.Port!.Value), server);
            Assert.Contains("not allowed by --allow", server.Stderr, StringComparison.Ordinal);
        }
        Assert.Equal(0, await server.StopAsync());
    }

    /// <summary>An admitted raw peer gets the 18-byte greeting; we then hang up.</summary>
    private static async Task<int> GreetingBytesAndHangUpAsync(IPAddress address, int port)
    {
        using var client = new TcpClient(address.AddressFamily);
        await client.ConnectAsync(address, port);
        byte[] greeting = new byte[18];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await client.GetStream().ReadExactlyAsync(greeting, cts.Token);
        return greeting.Length;
    }
}
