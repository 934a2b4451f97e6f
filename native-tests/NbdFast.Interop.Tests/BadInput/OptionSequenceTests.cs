using System.Buffers.Binary;
using NbdFast.Interop.Tests.Support;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.BadInput;

/// <summary>
/// reliability.md §(b) 12, 23, 28–29, 34: option sequences nobody tests (INFO then GO, GO twice, data after
/// ABORT) and STARTTLS on a server without TLS.
/// </summary>
public sealed class OptionSequenceTests(BadInputServers servers) : IClassFixture<BadInputServers>
{
    private const int Timeout = 120_000;

    /// <summary>CVE-2019-14851: INFO must leave nothing behind that a later GO trips on.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task InfoThenGo_GoDescribesTheExportAndServes(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            RawExportInfo info = await client.GoAsync("", NbdOption.Info);
            RawNbdClient.AssertOptionError(await client.OptionAsync(NbdOption.Info, RawNbdClient.InfoPayload("nope")), (uint)NbdOption.Info, NbdOptionReplyType.ErrUnknown);
            RawExportInfo again = await client.GoAsync("", NbdOption.Info, NbdInfoType.BlockSize, NbdInfoType.Name);
            RawExportInfo go = await client.GoAsync("");
            Assert.Equal((ulong)BadInputServer.ExportSize, go.Size);
            Assert.Equal((info.Size, info.Flags), (go.Size, go.Flags));
            Assert.Equal((again.Size, again.Flags), (go.Size, go.Flags));
            await WriteAndReadBackAsync(client, BadInputServer.ScratchOffset + 4096);
        }
        await server.AssertHealthyAsync(nameof(InfoThenGo_GoDescribesTheExportAndServes));
    }

    /// <summary>
    /// A failed GO lets the client try again; after a successful one the session is in transmission, where a
    /// second GO's IHAVEOPT bytes are a bad request magic: framing is lost and the connection is closed.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task GoTwice_TheSecondIsBadMagicAndCloses(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            RawNbdClient.AssertOptionError(await client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("nope")), (uint)NbdOption.Go, NbdOptionReplyType.ErrUnknown);
            await client.GoAsync("");
            await client.AssertInSyncAsync();
            // At least one request header's worth (28 bytes) so the server has a header to judge.
            await client.SendOptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("a-second-go"));
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(GoTwice_TheSecondIsBadMagicAndCloses));
    }

    /// <summary>ABORT (with a payload, which it should not have) is acknowledged; whatever follows is ignored.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task DataAfterAbort_IsIgnoredAfterTheAck(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            byte[] abort = new byte[NbdLimits.OptionHeaderSize + 8];
            HandshakeCodec.WriteOptionHeader(abort, (uint)NbdOption.Abort, 8);
            byte[] go = new byte[NbdLimits.OptionHeaderSize];
            HandshakeCodec.WriteOptionHeader(go, (uint)NbdOption.Go, 0);
            // ABORT, then in the same segment a GO and raw request bytes: none of it may be acted on.
            byte[] all = [.. abort, .. go, .. client.EncodeRequest((ushort)NbdCommand.Write, 0, 4, payload: [1, 2, 3, 4])];
            await client.WriteAsync(all);
            RawOptionReply ack = await client.ReadOptionReplyAsync();
            Assert.Equal(((uint)NbdOption.Abort, NbdOptionReplyType.Ack), (ack.Header.Option, ack.Type));
            await client.AssertClosedAsync();
        }
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            // A client that aborts and hangs up without reading the ACK is within the spec too.
            await client.StartAsync();
            await client.SendOptionAsync(NbdOption.Abort);
        }
        await server.AssertHealthyAsync(nameof(DataAfterAbort_IsIgnoredAfterTheAck));
    }

    /// <summary>§(b) 28–29: without TLS configured STARTTLS is refused by policy (with data: invalid) and the session goes on in clear.</summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task StartTlsWithoutTls_IsRefusedAndTheSessionContinues(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            RawNbdClient.AssertOptionError(await client.OptionAsync(NbdOption.StartTls), (uint)NbdOption.StartTls, NbdOptionReplyType.ErrPolicy);
            RawNbdClient.AssertOptionError(await client.OptionAsync(NbdOption.StartTls, new byte[] { 0x16, 0x03, 0x01 }), (uint)NbdOption.StartTls, NbdOptionReplyType.ErrInvalid);
            RawNbdClient.AssertOptionError(await client.OptionAsync(NbdOption.StartTls), (uint)NbdOption.StartTls, NbdOptionReplyType.ErrPolicy);
            await client.GoAsync("");
            await WriteAndReadBackAsync(client, BadInputServer.ScratchOffset + 8192);
        }
        await server.AssertHealthyAsync(nameof(StartTlsWithoutTls_IsRefusedAndTheSessionContinues));
    }

    /// <summary>
    /// §(b) 34 without TLS: a client that pipelines its ClientHello behind STARTTLS gets ERR_POLICY, and the
    /// ClientHello, read as the next option header, has no IHAVEOPT magic: hard disconnect.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(BadInputServers.Engines), MemberType = typeof(BadInputServers))]
    public async Task StartTlsWithPipelinedClientHello_IsRefusedThenDisconnected(Engine engine)
    {
        BadInputServer server = await servers.GetAsync(engine);
        await using (RawNbdClient client = await RawClients.ConnectAsync(server.Process))
        {
            await client.StartAsync();
            byte[] startTls = new byte[NbdLimits.OptionHeaderSize];
            HandshakeCodec.WriteOptionHeader(startTls, (uint)NbdOption.StartTls, 0);
            // The start of a TLS 1.2 ClientHello record: handshake(0x16), version 3.1, length, client_hello(1) ...
            byte[] clientHello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, .. new byte[64]];
            byte[] both = [.. startTls, .. clientHello];
            await client.WriteAsync(both);
            RawOptionReply refused = await client.ReadOptionReplyAsync();
            Assert.Equal(((uint)NbdOption.StartTls, NbdOptionReplyType.ErrPolicy), (refused.Header.Option, refused.Type));
            await client.AssertClosedAsync();
        }
        await server.AssertHealthyAsync(nameof(StartTlsWithPipelinedClientHello_IsRefusedThenDisconnected));
    }

    private static async Task WriteAndReadBackAsync(RawNbdClient client, ulong offset)
    {
        byte[] data = new byte[4096];
        Random.Shared.NextBytes(data);
        BinaryPrimitives.WriteUInt64BigEndian(data, offset);
        await client.SendWriteAsync(offset, data, cookie: 1);
        await client.AssertSuccessReplyAsync(1);
        Assert.Equal(data, await client.ReadDataAsync(2, offset, 4096));
    }
}
