using NbdFast.Protocol;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>NBD_OPT_STRUCTURED_REPLY and NBD_OPT_EXTENDED_HEADERS.</summary>
public class ReplyStyleOptionTests
{
    [Fact]
    public async Task StructuredReplyIsAcknowledgedAndAddsSendDf()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        Support.RawExportInfo info = await server.Client.GoAsync("a");
        Assert.Equal(TestExports.FlagsA | TestExports.SendDf, (int)info.Flags);
        NbdConnection connection = (await server.ConnectedAsync()).Connection;
        Assert.True(connection.StructuredReplies);
        Assert.False(connection.ExtendedHeaders);
    }

    [Fact]
    public async Task StructuredReplyWithPayloadIsInvalid()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.StructuredReply, new byte[] { 0 }), NbdOption.StructuredReply, NbdOptionReplyType.ErrInvalid);
        // Nothing was negotiated by the refused request.
        Assert.Equal(TestExports.FlagsA, (int)(await server.Client.GoAsync("a")).Flags);
        Assert.False((await server.ConnectedAsync()).Connection.StructuredReplies);
    }

    [Fact]
    public async Task StructuredReplyTwiceIsInvalidTheSecondTime()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        AssertError(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
        Assert.True((await server.ConnectedAsync()).Connection.StructuredReplies);
    }

    [Fact]
    public async Task StructuredReplyAfterExtendedHeadersIsExtHeaderReqd()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders);
        AssertError(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply, NbdOptionReplyType.ErrExtHeaderReqd);
        await server.Client.GoAsync("a");
        Assert.True((await server.ConnectedAsync()).Connection.ExtendedHeaders);
    }

    [Fact]
    public async Task ExtendedHeadersIsAcknowledged()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders);
        Support.RawExportInfo info = await server.Client.GoAsync("a");
        Assert.Equal(TestExports.FlagsA | TestExports.SendDf, (int)info.Flags);
        Assert.True((await server.ConnectedAsync()).Connection.ExtendedHeaders);
    }

    [Fact]
    public async Task ExtendedHeadersAfterStructuredReplyIsAcknowledged()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        AssertAck(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders);
        await server.Client.GoAsync("a");
        Assert.True((await server.ConnectedAsync()).Connection.ExtendedHeaders);
    }

    [Fact]
    public async Task ExtendedHeadersTwiceIsInvalidTheSecondTime()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertAck(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders);
        AssertError(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders, NbdOptionReplyType.ErrInvalid);
    }

    [Fact]
    public async Task ExtendedHeadersWithPayloadIsInvalid()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.ExtendedHeaders, new byte[4]), NbdOption.ExtendedHeaders, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
        Assert.False((await server.ConnectedAsync()).Connection.ExtendedHeaders);
    }
}
