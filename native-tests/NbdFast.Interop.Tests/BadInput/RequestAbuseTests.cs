using System.Buffers.Binary;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 42–50 against the binary, on a RAM disk and a file: bad request magic, unknown commands
/// and flags, zero and maximal lengths, offsets near 2^63 and past 2^64. Errors must be the spec's, with the
/// stream still in sync; lost framing must be a clean close.
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
                Assert.Empty(await client.ReadDataAsync(++cookie, BadInputServer.ScratchOffset, 0));
                Assert.Empty(await client.ReadDataAsync(++cookie, Size, 0));   // at the very end is still in range
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
            byte[] back = await client.ReadDataAsync(2, last, 32 * MiB);
            Assert.True(back.AsSpan().SequenceEqual(data), "32 MiB read-back differs");

            await client.SendRequestAsync(NbdCommand.Read, last - 1, 32 * MiB + 1, cookie: 3);
            await client.AssertErrorReplyAsync(3, NbdError.Overflow);
            await client.SendWriteAsync(last - 1, new byte[32 * MiB + 1], cookie: 4);
            await client.AssertErrorReplyAsync(4, NbdError.Overflow);
            await client.SendRequestAsync(NbdCommand.Trim, 0, 0xFFFF_FFFF, cookie: 5);
            await client.AssertErrorReplyAsync(5, NbdError.Invalid);
            await client.SendRequestAsync(NbdCommand.WriteZeroes, 0, 0xFFFF_FFFF, cookie: 6);
            await client.AssertErrorReplyAsync(6, NbdError.NoSpace);
            back = await client.ReadDataAsync(7, last, 32 * MiB);
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
}
