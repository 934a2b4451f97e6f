using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 4 and 60 (and §(c) 9): thousands of connections dropped mid-handshake, and a client that
/// floods requests and never reads a reply. Both while a well-behaved client keeps working.
/// </summary>
public sealed class ConnectionAbuseTests(BadInputServers servers) : IClassFixture<BadInputServers>
{
    private const int Timeout = 180_000;
    private const int Connections = 2000;
    private const int Parallel = 16;

    /// <summary>Every way to leave a handshake early, cycled through 2000 connections, 16 at a time.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task ThousandsOfConnectionsDroppedMidHandshake_LeaveNothingBehind(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        var endPoint = new IPEndPoint(IPAddress.Loopback, server.Process.Port!.Value);
        int next = -1;
        async Task WorkerAsync()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Connections)
            {
                await DropMidHandshakeAsync(endPoint, i % 7);
            }
        }
        Task storm = Task.WhenAll(Enumerable.Range(0, Parallel).Select(_ => Task.Run(WorkerAsync)));
        // The well-behaved client (and its fresh connection) must get through while the storm is on.
        await server.Companion.CheckAsync("during the connection storm");
        await storm;
        Assert.Equal(Connections, next - Parallel + 1);
        await server.AssertHealthyAsync(nameof(ThousandsOfConnectionsDroppedMidHandshake_LeaveNothingBehind));
    }

    /// <summary>
    /// §(b) 60: up to a million 64 KiB READ headers from a client that never reads. The server must stop reading
    /// (the client's sends stall long before the end), stay within its memory bound while stalled, keep serving
    /// others, and free everything once the flooder resets.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task ClientThatNeverReadsReplies_IsThrottledAndDoesNotGrowTheServer(Engine engine)
    {
        const int requests = 1_000_000;
        const int perBatch = 1024;
        BadInputServer server = await servers.GetAsync(engine);
        (RawNbdClient flooder, _) = await RawClients.NegotiateAsync(server.Process);
        long sent = 0;
        using var stop = new CancellationTokenSource();
        Task flood = Task.Run(async () =>
        {
            byte[] batch = new byte[perBatch * NbdLimits.RequestHeaderSize];
            for (int i = 0; i < requests / perBatch && !stop.IsCancellationRequested; i++)
            {
                for (int j = 0; j < perBatch; j++)
                {
                    ulong offset = BadInputServer.ScratchOffset + (ulong)((i * perBatch + j) % 512) * 65536;
                    RequestHeaderCodec.Write(batch.AsSpan(j * NbdLimits.RequestHeaderSize),
                        new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)(i * perBatch + j), offset, 65536), extended: false);
                }
                await flooder.Stream.WriteAsync(batch, stop.Token);
                Interlocked.Add(ref sent, batch.Length);
            }
        });

        // Wait until the flooder makes no progress for 2 s: the server has stopped reading it.
        long lastSent = -1;
        long peakRss = 0;
        for (int quiet = 0; quiet < 10 && !flood.IsCompleted;)
        {
            await Task.Delay(200);
            peakRss = Math.Max(peakRss, ProcessProbe.RssBytes(server.Process.Pid));
            long now = Interlocked.Read(ref sent);
            quiet = now == lastSent ? quiet + 1 : 0;
            lastSent = now;
        }
        Assert.False(flood.IsCompleted, $"the server read all {requests} requests without the client reading a reply{(flood.IsFaulted ? ": " + flood.Exception : "")}");
        await server.Companion.CheckAsync("while a client floods and never reads");
        peakRss = Math.Max(peakRss, ProcessProbe.RssBytes(server.Process.Pid));
        Assert.True(peakRss <= server.Baseline.RssBytes + BadInputServer.RssSlack,
            $"RSS peaked at {peakRss >> 20} MiB while a client sent {Interlocked.Read(ref sent) / NbdLimits.RequestHeaderSize} requests and read nothing; baseline {server.Baseline}");

        flooder.Socket!.LingerState = new LingerOption(true, 0);
        flooder.Socket.Close();
        await stop.CancelAsync();
        await Task.WhenAny(flood, Task.Delay(TimeSpan.FromSeconds(10)));
        await flooder.DisposeAsync();
        await server.AssertHealthyAsync(nameof(ClientThatNeverReadsReplies_IsThrottledAndDoesNotGrowTheServer));
    }

    /// <summary>One connection that leaves the handshake in the way <paramref name="how"/> picks.</summary>
    private static async Task DropMidHandshakeAsync(IPEndPoint endPoint, int how)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint);
        byte[] greeting = new byte[NbdLimits.GreetingSize];
        byte[] flags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, (uint)(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes));
        byte[] go = new byte[NbdLimits.OptionHeaderSize + 100];
        HandshakeCodec.WriteOptionHeader(go, (uint)NbdOption.Go, 100);
        switch (how)
        {
            case 0:   // connect and close at once, maybe before the greeting is out
                break;
            case 1:   // reset at once
                socket.LingerState = new LingerOption(true, 0);
                break;
            case 2:   // read the greeting, then close
                await ReadGreetingAsync(socket, greeting);
                break;
            case 3:   // 1 to 3 of the 4 client-flag bytes
                await ReadGreetingAsync(socket, greeting);
                await socket.SendAsync(flags.AsMemory(0, 1 + endPoint.Port % 3));
                break;
            case 4:   // flags and half an option header
                await ReadGreetingAsync(socket, greeting);
                await socket.SendAsync(flags);
                await socket.SendAsync(go.AsMemory(0, 10));
                break;
            case 5:   // flags and a GO whose payload stops short, then a reset
                await ReadGreetingAsync(socket, greeting);
                await socket.SendAsync(flags);
                await socket.SendAsync(go.AsMemory(0, NbdLimits.OptionHeaderSize + 30));
                socket.LingerState = new LingerOption(true, 0);
                break;
            default:  // a full INFO whose reply is never read
                await ReadGreetingAsync(socket, greeting);
                await socket.SendAsync(flags);
                byte[] info = new byte[NbdLimits.OptionHeaderSize + 6];
                HandshakeCodec.WriteOptionHeader(info, (uint)NbdOption.Info, 6);
                await socket.SendAsync(info);
                break;
        }
        socket.Close();
    }

    private static async Task ReadGreetingAsync(Socket socket, byte[] greeting)
    {
        using var timeout = new CancellationTokenSource(RawNbdClient.DefaultTimeout);
        int read = 0;
        while (read < greeting.Length)
        {
            int n = await socket.ReceiveAsync(greeting.AsMemory(read), timeout.Token);
            Assert.True(n > 0, "the server closed before finishing its greeting");
            read += n;
        }
    }
}
