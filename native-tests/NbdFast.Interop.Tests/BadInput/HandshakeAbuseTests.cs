using System.Text;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 1–3, 6–10, 13, 15–17: greeting and client-flag abuse, option framing and limits, long
/// names. Each case ends with <see cref="BadInputServer.AssertHealthyAsync"/>.
/// </summary>
public sealed class HandshakeAbuseTests(BadInputServers servers) : IClassFixture<BadInputServers>
{
    private const int Timeout = 120_000;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task UnknownClientFlags_AreAHardDisconnect(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        // 0x0d0a7878 is "\r\nxx", a telnet user; 4 is the first undefined bit.
        foreach (uint flags in new uint[] { 0x0d0a7878, 0x4, 0xFFFF_FFFF })
        {
            await using RawNbdClient client = await RawClients.ConnectAsync(server.Process);
            await client.ReadGreetingAsync();
            await client.SendClientFlagsAsync(flags);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(UnknownClientFlags_AreAHardDisconnect));
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task NoClientFlags_ExportNameWorksWithPaddingAndAnyOtherOptionDisconnects(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient oldClient = await RawClients.ConnectAsync(server.Process))
        {
            await oldClient.StartAsync(NbdClientFlags.None);
            (ulong size, NbdTransmissionFlags flags, byte[] padding) = await oldClient.ExportNameAsync("", expectZeroes: true);
            Assert.Equal((ulong)BadInputServer.ExportSize, size);
            Assert.True(flags.HasFlag(NbdTransmissionFlags.HasFlags), flags.ToString());
            Assert.All(padding, b => Assert.Equal(0, b));
            await oldClient.AssertInSyncAsync();
        }
        foreach (NbdOption option in new[] { NbdOption.Go, NbdOption.List, NbdOption.StructuredReply })
        {
            await using RawNbdClient client = await RawClients.ConnectAsync(server.Process);
            await client.StartAsync(NbdClientFlags.None);
            // Without fixed newstyle the client cannot parse an error reply: hanging up is the only safe answer.
            await client.SendOptionAsync(option, option == NbdOption.Go ? RawNbdClient.InfoPayload("") : default);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(NoClientFlags_ExportNameWorksWithPaddingAndAnyOtherOptionDisconnects));
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task OptionWithoutIHaveOptMagic_IsAHardDisconnect(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            byte[] option = new byte[NbdLimits.OptionHeaderSize];
            HandshakeCodec.WriteOptionHeader(option, (uint)NbdOption.List, 0);
            option[7] ^= 1;
            await client.WriteAsync(option);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(OptionWithoutIHaveOptMagic_IsAHardDisconnect));
    }

    /// <summary>§(b) 7–8: the length is refused before anything is read or allocated, so the close is immediate.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task OptionLengthOverTheCap_ClosesWithoutReadingThePayload(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        foreach ((uint option, uint length) in new[] { ((uint)NbdOption.Go, 0xFFFF_FFFFu), (0x7FFF_FFFFu, 0xFFFF_FFFFu), ((uint)NbdOption.Info, 64u * 1024 + 1) })
        {
            await using RawNbdClient client = await RawClients.ConnectAsync(server.Process);
            await client.StartAsync();
            await client.SendOptionAsync(option, default, declaredLength: length);   // header only: no payload follows
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(OptionLengthOverTheCap_ClosesWithoutReadingThePayload));
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task OptionOfExactlyTheCap_IsConsumedAndUnsupported(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            foreach (uint option in new uint[] { 4 /* PEEK_EXPORT */, 0x7FFF_FFFF, 0xFFFF_FFFF })
            {
                RawNbdClient.AssertOptionError(await client.OptionAsync(option, new byte[option == 4 ? 64 * 1024 : 100]), option, NbdOptionReplyType.ErrUnsup);
            }
            await client.GoAsync("");
            await client.AssertInSyncAsync();
        }
        await server.AssertHealthyAsync(nameof(OptionOfExactlyTheCap_IsConsumedAndUnsupported));
    }

    /// <summary>Truncated option headers and payloads followed by end of stream: a clean close, nothing sent.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task TruncatedOptions_CloseCleanly(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        byte[] go = new byte[NbdLimits.OptionHeaderSize + 100];
        HandshakeCodec.WriteOptionHeader(go, (uint)NbdOption.Go, 100);
        foreach (int sent in new[] { 1, 8, 15, NbdLimits.OptionHeaderSize, NbdLimits.OptionHeaderSize + 50, go.Length - 1 })
        {
            await using RawNbdClient client = await RawClients.ConnectAsync(server.Process);
            await client.StartAsync();
            await client.WriteAsync(go.AsMemory(0, sent));
            client.ShutdownSend();
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(TruncatedOptions_CloseCleanly));
    }

    /// <summary>§(b) 13, 15–17: 4096 bytes is the spec's string limit; one more is refused without harm.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task LongNames_AreRefusedWithBoundedReplies(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        byte[] name4097 = Encoding.ASCII.GetBytes(new string('a', 4097));
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            RawNbdClient.AssertOptionError(await client.OptionAsync((uint)NbdOption.Info, RawNbdClient.InfoPayload(name4097)), (uint)NbdOption.Info, NbdOptionReplyType.ErrInvalid);
            RawNbdClient.AssertOptionError(await client.OptionAsync((uint)NbdOption.Go, RawNbdClient.InfoPayload(name4097)), (uint)NbdOption.Go, NbdOptionReplyType.ErrInvalid);
            // A 4096-byte unknown name: ERR_UNKNOWN whose message echoes at most a bounded prefix (CVE-2020-10761).
            RawOptionReply unknown = RawNbdClient.AssertOptionError(
                await client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload(new string('b', 4096))), (uint)NbdOption.Go, NbdOptionReplyType.ErrUnknown);
            Assert.True(unknown.Payload.Length < 512, $"ERR_UNKNOWN message of {unknown.Payload.Length} bytes");
            // A name length that wraps when 4 or 6 is added (CVE-2022-26495), with a short payload behind it.
            foreach (uint nameLength in new[] { 0xFFFF_FFFFu, 0xFFFF_FFFAu })
            {
                byte[] payload = new byte[16];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(payload, nameLength);
                RawNbdClient.AssertOptionError(await client.OptionAsync((uint)NbdOption.Go, payload), (uint)NbdOption.Go, NbdOptionReplyType.ErrInvalid);
            }
            await client.GoAsync("");
            await client.AssertInSyncAsync();
        }
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            // EXPORT_NAME has no error reply: a name the spec forbids can only end the session.
            await client.SendOptionAsync((uint)NbdOption.ExportName, name4097);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(LongNames_AreRefusedWithBoundedReplies));
    }

    /// <summary>§(b) 10: 32 options without choosing an export are allowed; the 33rd ends the session.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task ThirtyThirdOptionWithoutAnExport_Disconnects(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            for (int i = 0; i < 32; i++)
            {
                RawNbdClient.AssertOptionError(await client.OptionAsync(0x1000u + (uint)i), 0x1000u + (uint)i, NbdOptionReplyType.ErrUnsup);
            }
            await client.SendOptionAsync(0x2000u);
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(ThirtyThirdOptionWithoutAnExport_Disconnects));
    }
}
