using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Faults;

/// <summary>
/// reliability.md §(c) 12–13 on both transports: the host cancels serving while requests are held in the
/// device. Every request in flight before the cancellation is still answered, correctly. (What requests that
/// arrive after the cancellation get is the shutdown semantics' business, not asserted here.)
/// </summary>
public sealed class ShutdownFaultTests
{
    private const int Timeout = 60_000;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task ServeCancelledWithRequestsInFlight_AnswersThemAll(Transport transport, bool structured)
    {
        var memory = new MemoryDevice(8L << 20);
        memory.Write(0, FaultHost.Pattern(0, 1 << 20));
        var gate = new FaultGate();
        var device = new FaultyDevice(memory)
            .Add(new Fault { Ops = FaultOps.Read | FaultOps.Write, Offset = 0, Length = 4 << 20, Gate = gate })
            .FailAt(FaultOps.Read, 1 << 20, 4096, Errno.EIO);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);
        RawNbdClient client = await FaultHost.NegotiateAsync(server, structured);

        var burst = new List<byte>();
        for (int i = 0; i < 8; i++)
        {
            burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Read, (ulong)i * 65536, 65536, cookie: (ulong)i));
        }
        burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Write, 2 << 20, 8192, cookie: 8, payload: FaultHost.Pattern(2 << 20, 8192, salt: 8)));
        burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Read, 1 << 20, 4096, cookie: 9));   // held, then fails
        await client.WriteAsync(burst.ToArray());
        await gate.WaitForArrivalsAsync(10);

        await server.ShutdownAsync();
        await Task.Delay(200);   // let the cancellation reach the session before the device lets go
        gate.Open();

        var answered = new HashSet<ulong>();
        for (int i = 0; i < 10; i++)
        {
            IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync(c => c < 8 ? 65536 : 0);
            ulong cookie = reply[0].Cookie;
            Assert.True(answered.Add(cookie), $"cookie {cookie} answered twice");
            NbdError error = reply.Select(c => c.Error).FirstOrDefault(e => e != NbdError.None);
            Assert.Equal(cookie == 9 ? NbdError.IO : NbdError.None, error);
            if (cookie < 8)
            {
                Assert.Equal(FaultHost.Pattern((long)cookie * 65536, 65536), RawNbdClient.DataOf(reply, cookie * 65536, 65536));
            }
        }
        Assert.Equal(10, answered.Count);
        byte[] written = new byte[8192];
        memory.Read(2 << 20, written);
        Assert.Equal(FaultHost.Pattern(2 << 20, 8192, salt: 8), written);

        await client.DisposeAsync();
        await FaultHost.AssertReleasedAsync(server);
    }
}
