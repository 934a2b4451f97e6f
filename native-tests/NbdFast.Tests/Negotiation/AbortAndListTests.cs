using NbdFast.Protocol;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>NBD_OPT_ABORT and NBD_OPT_LIST.</summary>
public class AbortAndListTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(5)] // the spec: a server SHOULD ignore data sent with ABORT
    public async Task AbortIsAcknowledgedThenConnectAsyncThrows(int payloadLength)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: TestExports.Offer);
        AssertAck(await server.Client.OptionAsync(NbdOption.Abort, new byte[payloadLength]), NbdOption.Abort);
        await server.FailsWithAsync<ClientRequestedAbortException>();
        await server.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task AbortFromAClientThatDoesNotWaitForTheAckStillThrowsAbort()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        await server.Client.SendOptionAsync(NbdOption.Abort);
        server.Client.ShutdownSend();
        await server.FailsWithAsync<ClientRequestedAbortException>();
    }

    [Fact]
    public async Task AbortFromAClientThatClosesAtOnceStillThrowsAbort()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        await server.Client.SendOptionAsync(NbdOption.Abort);
        await server.Client.DisposeAsync();
        await server.FailsWithAsync<ClientRequestedAbortException>();
    }

    [Fact]
    public async Task ListSendsOneServerReplyPerNameThenAck()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: TestExports.Offer, resolver: TestExports.Resolver());
        IReadOnlyList<Support.RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.List);
        Assert.Equal(3, replies.Count);
        AssertReply(replies[0], NbdOption.List, NbdOptionReplyType.Server, Server("a", TestExports.DescriptionA));
        AssertReply(replies[1], NbdOption.List, NbdOptionReplyType.Server, Server("b", TestExports.DescriptionB));
        AssertReply(replies[2], NbdOption.List, NbdOptionReplyType.Ack, []);
    }

    [Fact]
    public async Task ListWithoutResolverSendsNamesWithoutDescriptions()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: ["only"]);
        IReadOnlyList<Support.RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.List);
        Assert.Equal(2, replies.Count);
        // Byte for byte: magic, option 3, NBD_REP_SERVER (2), length 8, name length 4, "only".
        Assert.Equal("0003E889045565A9" + "00000003" + "00000002" + "00000008", Convert.ToHexString(Header(replies[0])));
        Assert.Equal("00000004" + "6F6E6C79", Convert.ToHexString(replies[0].Payload));
        AssertReply(replies[1], NbdOption.List, NbdOptionReplyType.Ack, []);
    }

    [Fact]
    public async Task ListWithAnEmptyOfferIsJustAck()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: []);
        AssertAck(await server.Client.OptionAsync(NbdOption.List), NbdOption.List);
    }

    [Fact]
    public async Task ListWithoutOfferIsRefusedByPolicyAndNegotiationContinues()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: null, resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.List), NbdOption.List, NbdOptionReplyType.ErrPolicy);
        await server.Client.GoAsync("a");
        Assert.Equal("a", (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task ListWithPayloadIsInvalid()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: TestExports.Offer);
        AssertError(await server.Client.OptionAsync(NbdOption.List, new byte[] { 1, 2, 3, 4 }), NbdOption.List, NbdOptionReplyType.ErrInvalid);
        Assert.Equal(3, (await server.Client.OptionAsync(NbdOption.List)).Count);
    }

    private static byte[] Header(Support.RawOptionReply reply)
    {
        var header = new byte[20];
        HandshakeCodec.WriteOptionReplyHeader(header, reply.Header.Option, reply.Header.Type, reply.Header.Length);
        Assert.Equal(NbdMagic.OptionReply, reply.Header.Magic);
        return header;
    }
}
