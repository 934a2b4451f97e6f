using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Faults;

/// <summary>
/// reliability.md §(c) 7–8 on both transports, TCP and unix: a client that goes away with a write payload half
/// sent, or with replies still queued. The server must not crash, apply the partial write, leak the
/// connection or its buffers, or deliver a byte to another client; the next client is served normally.
/// </summary>
public sealed class ClientDisconnectFaultTests
{
    private const int Timeout = 90_000;
    private const long Size = 32L << 20;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task WritePayloadHalfReceived_IsNotAppliedAndNothingLeaks(Transport transport, bool unixSocket)
    {
        var device = new FaultyDevice(new MemoryDevice(Size));
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);
        foreach (bool reset in new[] { false, true })
        {
            RawNbdClient client = await FaultHost.NegotiateAsync(server);
            await client.WriteAsync(client.EncodeRequest((ushort)NbdCommand.Write, 1 << 20, 1 << 20, cookie: 1));
            await client.WriteAsync(FaultHost.Pattern(1 << 20, 300 * 1024, salt: 0xBAD));
            if (reset)
            {
                await FaultHost.ResetAsync(client);
            }
            else
            {
                client.ShutdownSend();
                await client.AssertClosedAsync();
                await client.DisposeAsync();
            }
        }
        await FaultHost.AssertReleasedAsync(server);
        Assert.Equal(0, device.WritesApplied);

        RawNbdClient next = await FaultHost.NegotiateAsync(server);
        await next.SendRequestAsync(NbdCommand.Read, 1 << 20, 1 << 20, cookie: 2);
        Assert.Equal(new byte[1 << 20], await next.AssertReadReplyAsync(2, 1 << 20, 1 << 20));
        await next.SendWriteAsync(1 << 20, FaultHost.Pattern(1 << 20, 4096), cookie: 3);
        await next.AssertSuccessReplyAsync(3);
        await FaultHost.DisconnectAsync(next);
        await FaultHost.AssertReleasedAsync(server);
    }

    /// <summary>
    /// Clients that queue large READs (one of them failing) and reset without reading, twenty times, while a
    /// well-behaved client on another connection checks every reply it gets is its own.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task ResetWithRepliesQueued_HarmsNobodyAndNothingLeaks(Transport transport, bool unixSocket)
    {
        const long failing = 30L << 20;
        var memory = new MemoryDevice(Size);
        memory.Write(0, FaultHost.Pattern(0, 16 << 20));
        // Reads are slowed down so the resets land while they are still in flight.
        var device = new FaultyDevice(memory)
            .FailAt(FaultOps.Read, failing, 4096, Errno.EIO)
            .Add(new Fault { Ops = FaultOps.Read, Offset = 2 << 20, Length = 14 << 20, Delay = TimeSpan.FromMilliseconds(20) });
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);
        RawNbdClient good = await FaultHost.NegotiateAsync(server, structured: true);

        for (int round = 0; round < 20; round++)
        {
            RawNbdClient rude = await FaultHost.NegotiateAsync(server, structured: round % 2 == 0);
            var queued = new List<byte>();
            for (int i = 0; i < 4; i++)
            {
                queued.AddRange(rude.EncodeRequest((ushort)NbdCommand.Read, (ulong)(2 + i * 2) << 20, 2 << 20, cookie: (ulong)i));
            }
            queued.AddRange(rude.EncodeRequest((ushort)NbdCommand.Read, failing, 4096, cookie: 9));
            await rude.WriteAsync(queued.ToArray());
            await FaultHost.ResetAsync(rude);

            // The good client's reply is its own: its cookie, its data, and nothing else on its stream.
            ulong offset = (ulong)(round % 16) << 20;
            await good.SendRequestAsync(NbdCommand.Read, offset, 65536, cookie: 1000 + (ulong)round);
            Assert.Equal(FaultHost.Pattern((long)offset, 65536), await good.AssertReadReplyAsync(1000 + (ulong)round, offset, 65536));
        }
        await FaultHost.DisconnectAsync(good);
        await FaultHost.AssertReleasedAsync(server);

        RawNbdClient next = await FaultHost.NegotiateAsync(server);
        await next.AssertInSyncAsync();
        await FaultHost.DisconnectAsync(next);
        await FaultHost.AssertReleasedAsync(server);
    }
}
