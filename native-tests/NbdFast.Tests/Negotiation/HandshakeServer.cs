using System.Net.Sockets;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Negotiation;

/// <summary>
/// A server running <see cref="NbdServer.ConnectAsync"/> on one end of a loopback connection and a
/// <see cref="RawNbdClient"/> on the other. Disposing closes the client and any connection the server made.
/// </summary>
internal sealed class HandshakeServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private HandshakeServer(RawNbdClient client, Task<(string Name, NbdConnection Connection)> connecting)
    {
        Client = client;
        Connecting = connecting;
    }

    public RawNbdClient Client { get; }

    /// <summary>The server's ConnectAsync.</summary>
    public Task<(string Name, NbdConnection Connection)> Connecting { get; }

    public static async Task<HandshakeServer> StartAsync(IReadOnlyList<string>? offer = null, NbdExportResolver? resolver = null, NegotiationOptions? options = null)
    {
        (RawNbdClient client, Socket socket) = await RawNbdClient.ConnectLoopbackAsync();
        var channel = new NbdChannel(new NetworkStream(socket, ownsSocket: true));
        return new HandshakeServer(client, Task.Run(() => NbdServer.ConnectAsync(channel, offer, resolver, options)));
    }

    /// <summary>Starts the server and does the greeting and client flags.</summary>
    public static async Task<HandshakeServer> StartedAsync(IReadOnlyList<string>? offer = null, NbdExportResolver? resolver = null, NegotiationOptions? options = null)
    {
        HandshakeServer server = await StartAsync(offer, resolver, options);
        await server.Client.StartAsync();
        return server;
    }

    /// <summary>Waits for ConnectAsync to succeed.</summary>
    public async Task<(string Name, NbdConnection Connection)> ConnectedAsync() => await Connecting.WaitAsync(Timeout);

    /// <summary>
    /// Waits for ConnectAsync to succeed, then serves the connection in the background (the resolved export
    /// when <paramref name="device"/> is null) and closes it when serving ends.
    /// </summary>
    public async Task<Task> ServeInBackgroundAsync(IBlockDevice? device = null, bool readOnly = false)
    {
        (_, NbdConnection connection) = await ConnectedAsync();
        return Task.Run(async () =>
        {
            await using (connection)
            {
                if (device is null)
                {
                    await connection.ServeAsync();
                }
                else
                {
                    await connection.ServeAsync(device, readOnly);
                }
            }
        });
    }

    /// <summary>Asserts that ConnectAsync fails with <typeparamref name="T"/>.</summary>
    public async Task<T> FailsWithAsync<T>() where T : Exception =>
        await Assert.ThrowsAsync<T>(async () => await Connecting.WaitAsync(Timeout));

    /// <summary>Asserts that the server closed the connection without a reply and ConnectAsync failed with a protocol error.</summary>
    public async Task AssertHardDisconnectAsync()
    {
        await Client.AssertClosedAsync();
        await FailsWithAsync<NbdProtocolException>();
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        try
        {
            (_, NbdConnection connection) = await Connecting.WaitAsync(Timeout);
            await connection.DisposeAsync();
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // The test has already asserted on how negotiation ended.
        }
    }
}

/// <summary>The exports the negotiation tests resolve: "a" (writable, 1 MiB) and "b" (read-only, 2 MiB).</summary>
internal static class TestExports
{
    public const long SizeA = 1024 * 1024;
    public const long SizeB = 2 * 1024 * 1024;
    public const string DescriptionA = "export A";
    public const string DescriptionB = "export B";

    /// <summary>A 4096-byte name (the spec's maximum) that resolves to export A.</summary>
    public static readonly string LongName = new('n', NbdLimits.MaxStringLength);

    public static readonly IReadOnlyList<string> Offer = ["a", "b"];

    /// <summary>
    /// Export A's flags without structured replies: HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM,
    /// SEND_WRITE_ZEROES, CAN_MULTI_CONN, SEND_CACHE, SEND_FAST_ZERO.
    /// </summary>
    public const ushort FlagsA = 0x0D6D;

    /// <summary>Export B's flags: HAS_FLAGS, READ_ONLY, SEND_FLUSH, SEND_FUA, CAN_MULTI_CONN, SEND_CACHE.</summary>
    public const ushort FlagsB = 0x050F;

    /// <summary>NBD_FLAG_SEND_DF, added once structured replies or extended headers are negotiated.</summary>
    public const ushort SendDf = 0x0080;

    /// <summary>A resolver over fresh devices: "a", "b" and <see cref="LongName"/> (another name for "a").</summary>
    public static NbdExportResolver Resolver()
    {
        var a = new NbdExport(new MemoryDevice(SizeA), ReadOnly: false, DescriptionA);
        var b = new NbdExport(new MemoryDevice(SizeB), ReadOnly: true, DescriptionB);
        return (name, _) => ValueTask.FromResult(name switch
        {
            "a" => a,
            "b" => b,
            _ when name == LongName => a,
            _ => (NbdExport?)null,
        });
    }
}
