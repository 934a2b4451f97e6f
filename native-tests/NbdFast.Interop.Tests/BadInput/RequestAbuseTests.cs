using System.Buffers.Binary;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 42–50 and 61 against the binary, on a RAM disk and a file: bad request magic, unknown
/// commands and flags, zero and maximal lengths, offsets near 2^63 and past 2^64, and write payloads cut short.
/// Errors must be the spec's, with the stream still in sync; lost framing must be a clean close.
/// </summary>
public sealed class RequestAbuseTests(BadInputServers servers) : IClassFixture<BadInputServers>
{
    private const int Timeout = 120_000;
    private const int MiB = 1 << 20;
    private const ulong Size = BadInputServer.ExportSize;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task BadRequestMagic_ClosesWithoutAReply(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        // One bit off NBD_REQUEST_MAGIC; the extended-header magic without negotiating it; zeroes.
        foreach (uint magic in new uint[] { 0x25609514, NbdMagic.ExtendedRequest, 0 })
        {
            (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
            await using (client)
            {
                byte[] request = client.EncodeRequest((ushort)NbdCommand.Read, BadInputServer.ScratchOffset, 512, cookie: 1);
                BinaryPrimitives.WriteUInt32BigEndian(request, magic);
                await client.WriteAsync(request);
                await client.AssertClosedAsync();
            }
        }
        await server.AssertHealthyAsync(nameof(BadRequestMagic_ClosesWithoutAReply));
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task UnknownCommandsAndFlags_AreEinvalAndTheStreamStaysInSync(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            ulong cookie = 100;
            foreach (ushort command in new ushort[] { 0x55, (ushort)NbdCommand.Resize, 0xFFFF })
            {
                await client.SendRequestAsync(command, BadInputServer.ScratchOffset, 512, ++cookie);
                await client.AssertErrorReplyAsync(cookie, NbdError.Invalid);
            }
            // Flags on the wrong command, and a bit no command defines. WRITE payloads are consumed all the same.
            foreach ((NbdCommand command, NbdCommandFlags flags) in new[]
            {
                (NbdCommand.Read, (NbdCommandFlags)0x8000),
                (NbdCommand.Read, NbdCommandFlags.ReqOne),
                (NbdCommand.Read, NbdCommandFlags.DontFragment),   // DF needs structured replies
                (NbdCommand.Write, NbdCommandFlags.NoHole),
                (NbdCommand.Write, NbdCommandFlags.DontFragment),
                (NbdCommand.Trim, NbdCommandFlags.FastZero),
                (NbdCommand.Flush, NbdCommandFlags.ReqOne),
            })
            {
                bool write = command == NbdCommand.Write;
                ulong length = command == NbdCommand.Flush ? 0ul : 4096ul;
                ulong offset = command == NbdCommand.Flush ? 0 : BadInputServer.ScratchOffset;
                await client.SendRequestAsync(command, offset, length, ++cookie, flags, write ? new byte[4096] : default);
                await client.AssertErrorReplyAsync(cookie, NbdError.Invalid);
            }
            await client.AssertInSyncAsync();
        }
        await server.AssertHealthyAsync(nameof(UnknownCommandsAndFlags_AreEinvalAndTheStreamStaysInSync));
    }

    /// <summary>§(b) 49: zero-length requests are no-ops, never a disconnect; BLOCK_STATUS of 0 bytes is EINVAL.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task ZeroLengthRequests_SucceedAndTheStreamStaysInSync(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        foreach (bool structured in new[] { false, true })
        {
            (RawNbdClient client, RawExportInfo info) = await RawClients.NegotiateAsync(server.Process, structured);
            await using (client)
            {
                ulong cookie = 200;
                Assert.Empty(await ReadAsync(client, ++cookie, BadInputServer.ScratchOffset, 0));
                Assert.Empty(await ReadAsync(client, ++cookie, Size, 0));   // at the very end is still in range
                await client.SendWriteAsync(BadInputServer.ScratchOffset, [], ++cookie);
                await client.AssertSuccessReplyAsync(cookie);
                foreach ((NbdCommand command, NbdTransmissionFlags needs) in new[]
                {
                    (NbdCommand.Trim, NbdTransmissionFlags.SendTrim),
                    (NbdCommand.WriteZeroes, NbdTransmissionFlags.SendWriteZeroes),
                    (NbdCommand.Cache, NbdTransmissionFlags.SendCache),
                })
                {
                    if (info.Flags.HasFlag(needs))
                    {
                        await client.SendRequestAsync(command, BadInputServer.ScratchOffset, 0, ++cookie);
                        await client.AssertSuccessReplyAsync(cookie);
                    }
                }
                // No metadata context was negotiated, and a zero length is invalid anyway.
                await client.SendRequestAsync(NbdCommand.BlockStatus, BadInputServer.ScratchOffset, 0, ++cookie);
                await client.AssertErrorReplyAsync(cookie, NbdError.Invalid);
                await client.AssertInSyncAsync();
            }
        }
        await server.AssertHealthyAsync(nameof(ZeroLengthRequests_SucceedAndTheStreamStaysInSync));
    }

    /// <summary>
    /// §(b) 44, 45, 47: 32 MiB (the maximum payload) at the last offset works both ways; one byte more is
    /// EOVERFLOW (a write's payload is drained first); TRIM and WRITE_ZEROES of 4 GiB - 1 past the end are
    /// refused; a WRITE declaring 4 GiB - 1 cannot be drained and closes the connection.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task MaximalLengths_WorkAtTheLimitAndAreRefusedPastIt(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong last = Size - 32 * MiB;
        byte[] data = new byte[32 * MiB];
        new Random(32).NextBytes(data);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(last, data, cookie: 1);
            await client.AssertSuccessReplyAsync(1);
            byte[] back = await ReadAsync(client, 2, last, 32 * MiB);
            Assert.True(back.AsSpan().SequenceEqual(data), "32 MiB read-back differs");

            await client.SendRequestAsync(NbdCommand.Read, last - 1, 32 * MiB + 1, cookie: 3);
            await client.AssertErrorReplyAsync(3, NbdError.Overflow);
            await client.SendWriteAsync(last - 1, new byte[32 * MiB + 1], cookie: 4);
            await client.AssertErrorReplyAsync(4, NbdError.Overflow);
            await client.SendRequestAsync(NbdCommand.Trim, 0, 0xFFFF_FFFF, cookie: 5);
            await client.AssertErrorReplyAsync(5, NbdError.Invalid);
            await client.SendRequestAsync(NbdCommand.WriteZeroes, 0, 0xFFFF_FFFF, cookie: 6);
            await client.AssertErrorReplyAsync(6, NbdError.NoSpace);
            back = await ReadAsync(client, 7, last, 32 * MiB);
            Assert.True(back.AsSpan().SequenceEqual(data), "a refused request changed the data");
        }
        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendRequestAsync(NbdCommand.Write, BadInputServer.ScratchOffset, 0xFFFF_FFFF, cookie: 8, payload: new byte[4096]);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(MaximalLengths_WorkAtTheLimitAndAreRefusedPastIt));
    }

    /// <summary>§(b) 46: offsets near 2^63 and ranges that wrap past 2^64 are refused, never wrapped into range.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task OffsetsNear2To63AndRangesThatOverflow_AreRefused(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        (ulong Offset, uint Length)[] ranges =
        [
            (long.MaxValue, 1),                        // 2^63 - 1
            (1ul << 63, 4096),                         // 2^63: negative as a signed offset
            ((1ul << 63) - 4096, 4096),
            (ulong.MaxValue, 1),                       // offset + length wraps to 0
            (ulong.MaxValue - 2047, 4096),             // wraps to 2048, inside the export
            (Size - 4096, 8192),                       // just past the end, no wrap
            (Size + 1, 0),
        ];
        (RawNbdClient client, RawExportInfo info) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            ulong cookie = 300;
            foreach ((ulong offset, uint length) in ranges)
            {
                foreach ((NbdCommand command, NbdError expected) in new[]
                {
                    (NbdCommand.Read, NbdError.Invalid),
                    (NbdCommand.Write, NbdError.NoSpace),
                    (NbdCommand.Trim, NbdError.Invalid),
                    (NbdCommand.WriteZeroes, NbdError.NoSpace),
                    (NbdCommand.Cache, NbdError.Invalid),
                })
                {
                    if (command == NbdCommand.Cache && !info.Flags.HasFlag(NbdTransmissionFlags.SendCache))
                    {
                        continue;
                    }
                    byte[] payload = command == NbdCommand.Write ? new byte[length] : [];
                    await client.SendRequestAsync(command, offset, length, ++cookie, payload: payload);
                    await client.AssertErrorReplyAsync(cookie, expected);
                }
            }
            await client.AssertInSyncAsync();
        }
        // The wrapped ranges point into [0, 2048), the well-behaved client's region: its next round checks
        // that its previous data there is untouched.
        await server.AssertHealthyAsync(nameof(OffsetsNear2To63AndRangesThatOverflow_AreRefused));
    }

    /// <summary>
    /// §(b) 61: a WRITE whose payload stops short (end of stream or a reset) and a request header cut short:
    /// the connection closes cleanly and the partial write is not applied.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task WritePayloadCutShort_IsNotAppliedAndClosesCleanly(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong target = BadInputServer.ScratchOffset + 2 * MiB;
        byte[] before = new byte[64 * 1024];
        new Random(61).NextBytes(before);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(target, before, cookie: 1);
            await client.AssertSuccessReplyAsync(1);
        }

        byte[] part = new byte[40_000];
        Array.Fill(part, (byte)0xEE);
        foreach (bool reset in new[] { false, true })
        {
            (client, _) = await RawClients.NegotiateAsync(server.Process);
            await using (client)
            {
                await client.WriteAsync(client.EncodeRequest((ushort)NbdCommand.Write, target, 64 * 1024, cookie: 2));
                await client.WriteAsync(part);
                if (reset)
                {
                    client.Socket!.LingerState = new LingerOption(true, 0);   // close sends RST
                    client.Socket.Close();
                    continue;
                }
                client.ShutdownSend();
                await client.AssertClosedAsync();
            }
        }

        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            // A header cut short, then end of stream.
            await client.WriteAsync(client.EncodeRequest((ushort)NbdCommand.Read, target, 512, cookie: 3).AsMemory(0, 20));
            client.ShutdownSend();
            await client.AssertClosedAsync();
        }

        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] after = await ReadAsync(client, 4, target, before.Length);
            Assert.True(after.AsSpan().SequenceEqual(before), "a cut-short write was applied");
        }
        await server.AssertHealthyAsync(nameof(WritePayloadCutShort_IsNotAppliedAndClosesCleanly));
    }

    /// <summary>§(b) 58: the cookie is opaque; two requests in flight with the same one are both answered.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task DuplicateCookiesInFlight_AreBothAnswered(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong a = BadInputServer.ScratchOffset + 4 * MiB, b = a + 65536;
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(a, Filled(65536, 0xA1), cookie: 1);
            await client.SendWriteAsync(b, Filled(65536, 0xB2), cookie: 1);
            await client.AssertSuccessReplyAsync(1);
            await client.AssertSuccessReplyAsync(1);
            byte[] both = [.. client.EncodeRequest((ushort)NbdCommand.Read, a, 65536, cookie: 7), .. client.EncodeRequest((ushort)NbdCommand.Read, b, 65536, cookie: 7)];
            await client.WriteAsync(both);
            byte[] first = await client.AssertReadReplyAsync(7, 0, 65536);
            byte[] second = await client.AssertReadReplyAsync(7, 0, 65536);
            // Replies may come in either order; between them they must hold both blocks, whole.
            Assert.Equal(new[] { (byte)0xA1, (byte)0xB2 }, new[] { first[0], second[0] }.Order());
            Assert.All(new[] { first, second }, block => Assert.All(block, x => Assert.Equal(block[0], x)));
        }
        await server.AssertHealthyAsync(nameof(DuplicateCookiesInFlight_AreBothAnswered));
    }

    /// <summary>
    /// §(b) 59: DISC with non-zero offset and length behind 8 READs: all 8 answered, DISC not, then a close. And
    /// a WRITE sent behind DISC (which the spec forbids) is ignored. (It is sent on a connection of its own:
    /// closing a socket with unread input makes the kernel reset it, which may cost the client replies it
    /// has not read yet, so the replies are checked on a connection that keeps to the spec.)
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.EnginesAndExports), MemberType = typeof(BadInputServers))]
    public async Task DisconnectBehindPipelinedReads_AnswersThemThenCloses(Engine engine, ExportKind export)
    {
        BadInputServer server = await servers.GetAsync(engine, export);
        const ulong start = BadInputServer.ScratchOffset + 8 * MiB;
        byte[] pattern = new byte[8 * 65536];
        new Random(59).NextBytes(pattern);
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            await client.SendWriteAsync(start, pattern, cookie: 1);
            await client.AssertSuccessReplyAsync(1);
            var burst = new List<byte>();
            for (int i = 0; i < 8; i++)
            {
                burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Read, start + (ulong)i * 65536, 65536, cookie: 100 + (ulong)i));
            }
            burst.AddRange(client.EncodeRequest((ushort)NbdCommand.Disconnect, 12345, 678, cookie: 999));
            await client.WriteAsync(burst.ToArray());
            var seen = new HashSet<ulong>();
            for (int i = 0; i < 8; i++)
            {
                IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync(65536);
                ulong cookie = reply[0].Cookie;
                Assert.InRange(cookie, 100ul, 107ul);
                Assert.True(seen.Add(cookie), $"cookie {cookie} answered twice");
                int index = (int)(cookie - 100);
                Assert.True(pattern.AsSpan(index * 65536, 65536).SequenceEqual(RawNbdClient.DataOf(reply, 0, 65536)), $"READ {index} returned the wrong data");
            }
            await client.AssertClosedAsync();
        }
        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] discThenWrite = [.. client.EncodeRequest((ushort)NbdCommand.Disconnect, 0, 0, cookie: 2),
                .. client.EncodeRequest((ushort)NbdCommand.Write, start, 4096, cookie: 3, payload: new byte[4096])];
            await client.WriteAsync(discThenWrite);
            await client.AssertClosedAsync();
        }
        (client, _) = await RawClients.NegotiateAsync(server.Process);
        await using (client)
        {
            byte[] stored = await ReadAsync(client, 4, start, 4096);
            Assert.True(stored.AsSpan().SequenceEqual(pattern.AsSpan(0, 4096)), "a request sent after DISC was applied");
        }
        await server.AssertHealthyAsync(nameof(DisconnectBehindPipelinedReads_AnswersThemThenCloses));
    }

    private static byte[] Filled(int length, byte value)
    {
        byte[] data = new byte[length];
        Array.Fill(data, value);
        return data;
    }

    private static async ValueTask<byte[]> ReadAsync(RawNbdClient client, ulong cookie, ulong offset, int length)
    {
        await client.SendRequestAsync(NbdCommand.Read, offset, (ulong)length, cookie);
        return await client.AssertReadReplyAsync(cookie, offset, length);
    }
}
