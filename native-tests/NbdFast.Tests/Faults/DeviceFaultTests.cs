using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Faults;

/// <summary>
/// reliability.md §(c) 1–3, 5, 14 on both transports: a device error reaches only the request that hit it, with
/// the spec's error on the wire (an error chunk with structured replies); a torn write is never acknowledged;
/// a held request lets the others overtake it.
/// </summary>
public sealed class DeviceFaultTests
{
    private const int Timeout = 60_000;
    private const long Size = 16L << 20;
    private const long BadRead = 1 << 20;
    private const long BadWrite = 2 << 20;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task ErrorsInAPipeline_FailOnlyTheirOwnRequests(Transport transport, bool structured)
    {
        var memory = new MemoryDevice(Size);
        memory.Write(0, FaultHost.Pattern(0, 2 << 20));
        var device = new FaultyDevice(memory)
            .FailAt(FaultOps.Read, BadRead, 4096, Errno.EIO)
            .FailAt(FaultOps.Write, BadWrite, 4096, Errno.ENOSPC);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);
        RawNbdClient client = await FaultHost.NegotiateAsync(server, structured);

        // One burst: good reads around a bad one, good writes around a bad one, and a flush.
        var reads = new Dictionary<ulong, (long Offset, int Length)>
        {
            [1] = (0, 65536), [2] = (65536, 65536), [3] = (BadRead - 4096, 4096), [4] = (BadRead + 4096, 4096), [10] = (BadRead, 4096),
        };
        var writes = new Dictionary<ulong, long> { [20] = 3 << 20, [21] = (3 << 20) + 8192, [22] = BadWrite - 8192, [30] = BadWrite };
        var burst = new List<byte>();
        foreach ((ulong cookie, (long offset, int length)) in reads)
        {
            burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Read, (ulong)offset, (ulong)length, cookie));
        }
        foreach ((ulong cookie, long offset) in writes)
        {
            burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Write, (ulong)offset, 8192, cookie, payload: FaultHost.Pattern(offset, 8192, salt: cookie)));
        }
        burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Flush, 0, 0, cookie: 40));
        await client.WriteAsync(burst.ToArray());

        var replies = new Dictionary<ulong, IReadOnlyList<RawReply>>();
        while (replies.Count < reads.Count + writes.Count + 1)
        {
            IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync(c => reads.TryGetValue(c, out var r) ? r.Length : 0);
            Assert.True(replies.TryAdd(reply[0].Cookie, reply), $"two replies for cookie {reply[0].Cookie}");
        }

        AssertError(replies[10], NbdError.IO, structured);
        AssertError(replies[30], NbdError.NoSpace, structured);
        foreach ((ulong cookie, (long offset, int length)) in reads.Where(r => r.Key != 10))
        {
            Assert.All(replies[cookie], c => Assert.Equal(NbdError.None, c.Error));
            Assert.Equal(FaultHost.Pattern(offset, length), RawNbdClient.DataOf(replies[cookie], (ulong)offset, length));
        }
        Assert.All(writes.Keys.Where(c => c != 30).Append(40ul), c => Assert.Equal(NbdError.None, Assert.Single(replies[c]).Error));

        // The connection is still up, the good writes landed, and the failed one left its range alone.
        foreach ((ulong cookie, long offset) in writes)
        {
            await client.SendRequestAsync(NbdCommand.Read, (ulong)offset, 8192, cookie: 100 + cookie);
            byte[] stored = await client.AssertReadReplyAsync(100 + cookie, (ulong)offset, 8192);
            Assert.Equal(cookie == 30 ? new byte[8192] : FaultHost.Pattern(offset, 8192, salt: cookie), stored);
        }
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    /// <summary>§(c) 3: host errno values map to the spec's fixed error numbers; the n-th-call trigger fails exactly one flush.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task HostErrnos_ReachTheWireAsTheSpecsErrors(Transport transport)
    {
        (int Errno, NbdError Expected)[] cases =
        [
            (Errno.EIO, NbdError.IO), (Errno.ENOSPC, NbdError.NoSpace), (Errno.EDQUOT, NbdError.NoSpace),
            (Errno.EFBIG, NbdError.NoSpace), (Errno.EROFS, NbdError.Perm), (Errno.EPERM, NbdError.Perm),
        ];
        var device = new FaultyDevice(new MemoryDevice(Size)).FailNth(FaultOps.Flush, 2, Errno.EIO);
        for (int i = 0; i < cases.Length; i++)
        {
            device.FailAt(FaultOps.Write | FaultOps.Read, (4L + i) << 20, 4096, cases[i].Errno);
        }
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: true, transport: transport);
        RawNbdClient client = await FaultHost.NegotiateAsync(server);
        for (int i = 0; i < cases.Length; i++)
        {
            ulong offset = (4ul + (ulong)i) << 20;
            await client.SendWriteAsync(offset, new byte[4096], cookie: (ulong)i);
            await client.AssertErrorReplyAsync((ulong)i, cases[i].Expected);
            await client.SendRequestAsync(NbdCommand.Read, offset, 4096, cookie: 50 + (ulong)i);
            await client.AssertErrorReplyAsync(50 + (ulong)i, cases[i].Expected);
        }
        for (ulong flush = 1; flush <= 3; flush++)
        {
            await client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 100 + flush);
            if (flush == 2)
            {
                await client.AssertErrorReplyAsync(102, NbdError.IO);
            }
            else
            {
                await client.AssertSuccessReplyAsync(100 + flush);
            }
        }
        await client.AssertInSyncAsync();
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    /// <summary>§(c) 5: a write that applied only a prefix and then failed is reported as failed, never as done.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task TornWrite_IsAnErrorAndLeavesItsNeighboursAlone(Transport transport, bool structured)
    {
        const long target = 3 << 20;
        var memory = new MemoryDevice(Size);
        memory.Write(target - 4096, FaultHost.Pattern(target - 4096, 16384));
        var device = new FaultyDevice(memory).Add(new Fault { Ops = FaultOps.Write, Offset = target, Length = 1, Errno = Errno.EIO, TornPrefix = 1000 });
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);
        RawNbdClient client = await FaultHost.NegotiateAsync(server, structured);

        await client.SendWriteAsync(target, FaultHost.Pattern(target, 8192, salt: 0xFF), cookie: 1, NbdCommandFlags.Fua);
        await client.AssertErrorReplyAsync(1, NbdError.IO);
        Assert.Equal(1, device.WritesApplied);   // the torn prefix did reach the device

        await client.SendRequestAsync(NbdCommand.Read, (ulong)target - 4096, 4096, cookie: 2);
        Assert.Equal(FaultHost.Pattern(target - 4096, 4096), await client.AssertReadReplyAsync(2, (ulong)target - 4096, 4096));
        await client.SendRequestAsync(NbdCommand.Read, (ulong)target + 8192, 4096, cookie: 3);
        Assert.Equal(FaultHost.Pattern(target + 8192, 4096), await client.AssertReadReplyAsync(3, (ulong)target + 8192, 4096));

        // A retry of the same write (the fault fires once per overlapping call, so clear it) succeeds.
        device.Clear();
        await client.SendWriteAsync(target, FaultHost.Pattern(target, 8192, salt: 0xFF), cookie: 4);
        await client.AssertSuccessReplyAsync(4);
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    /// <summary>§(c) 14: a request held by the device is overtaken by later ones; each reply matches its cookie.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task HeldRequest_IsOvertakenAndStillAnsweredCorrectly(Transport transport)
    {
        var memory = new MemoryDevice(Size);
        memory.Write(0, FaultHost.Pattern(0, 1 << 20));
        var gate = new FaultGate();
        var device = new FaultyDevice(memory).Add(new Fault { Ops = FaultOps.Read, Offset = 0, Length = 1, Gate = gate });
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);
        RawNbdClient client = await FaultHost.NegotiateAsync(server, structured: true);

        await client.SendRequestAsync(NbdCommand.Read, 0, 65536, cookie: 1);
        await gate.WaitForArrivalsAsync(1);
        await client.SendRequestAsync(NbdCommand.Read, 65536, 65536, cookie: 2);
        await client.SendWriteAsync(2 << 20, FaultHost.Pattern(2 << 20, 4096), cookie: 3);
        var overtaking = new HashSet<ulong>();
        for (int i = 0; i < 2; i++)
        {
            IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync();
            Assert.All(reply, c => Assert.Equal(NbdError.None, c.Error));
            overtaking.Add(reply[0].Cookie);
            if (reply[0].Cookie == 2)
            {
                Assert.Equal(FaultHost.Pattern(65536, 65536), RawNbdClient.DataOf(reply, 65536, 65536));
            }
        }
        Assert.Equal([2ul, 3ul], overtaking.Order());

        gate.Open();
        Assert.Equal(FaultHost.Pattern(0, 65536), await client.AssertReadReplyAsync(1, 0, 65536));
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    /// <summary>An error reply: a simple one, or one error chunk (NBD_REPLY_TYPE_ERROR or ERROR_OFFSET) that ends the reply.</summary>
    private static void AssertError(IReadOnlyList<RawReply> reply, NbdError expected, bool structured)
    {
        RawReply last = reply[^1];
        Assert.Equal(expected, reply.Select(c => c.Error).First(e => e != NbdError.None));
        Assert.True(last.IsDone);
        if (structured)
        {
            RawReply error = reply.Single(c => c.Error != NbdError.None);
            Assert.True(error.Header.Type is NbdReplyType.Error or NbdReplyType.ErrorOffset, error.Header.Type.ToString());
            Assert.DoesNotContain(reply, c => c.Header.Type == NbdReplyType.OffsetData);
        }
        else
        {
            Assert.True(Assert.Single(reply).IsSimple);
            Assert.Empty(last.Payload);
        }
    }
}
