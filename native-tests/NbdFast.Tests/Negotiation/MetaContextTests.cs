using System.Buffers.Binary;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT.</summary>
public class MetaContextTests
{
    private static async Task<HandshakeServer> StructuredAsync(NbdExportResolver? resolver = null)
    {
        HandshakeServer server = await HandshakeServer.StartedAsync(resolver: resolver);
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        return server;
    }

    [Theory]
    [InlineData("")]
    [InlineData("base:")]
    [InlineData("base:allocation")]
    [InlineData("qemu:dirty-bitmap:x|base:")]
    public async Task ListFindsBaseAllocationWithIdZero(string queryList)
    {
        string[] queries = queryList.Split('|', StringSplitOptions.RemoveEmptyEntries);
        await using HandshakeServer server = await StructuredAsync();
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.ListMetaContext, RawNbdClient.MetaContextPayload("", queries));
        Assert.Equal(2, replies.Count);
        // NBD_REP_META_CONTEXT: id 0, "base:allocation".
        AssertReply(replies[0], NbdOption.ListMetaContext, NbdOptionReplyType.MetaContext, Convert.FromHexString("00000000" + Convert.ToHexString("base:allocation"u8)));
        AssertReply(replies[1], NbdOption.ListMetaContext, NbdOptionReplyType.Ack, []);
    }

    [Theory]
    [InlineData(NbdOption.ListMetaContext)]
    [InlineData(NbdOption.SetMetaContext)]
    public async Task UnknownNamespaceIsJustAck(NbdOption option)
    {
        await using HandshakeServer server = await StructuredAsync();
        AssertAck(await server.Client.OptionAsync(option, RawNbdClient.MetaContextPayload("", "qemu:dirty-bitmap:x", "x-foo:bar")), option);
    }

    [Theory]
    [InlineData(NbdOption.ListMetaContext)]
    [InlineData(NbdOption.SetMetaContext)]
    public async Task BeforeStructuredRepliesIsInvalid(NbdOption option)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        AssertError(await server.Client.OptionAsync(option, RawNbdClient.MetaContextPayload("", "base:allocation")), option, NbdOptionReplyType.ErrInvalid);
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
    }

    public static TheoryData<string, string> MalformedPayloads => new()
    {
        { "query count 5, no queries", "00000000" + "00000005" },
        { "query count 0xFFFFFFFF", "00000000" + "FFFFFFFF" + "00000001" + "61" },
        { "query length beyond payload", "00000000" + "00000001" + "00000010" + "626173653A" },
        { "export name length beyond payload", "000000FF" + "00000000" },
        { "no query count", "00000000" },
        { "trailing bytes", "00000000" + "00000000" + "00" },
        { "query with NUL", "00000000" + "00000001" + "00000006" + "626173653A00" },
        { "query of 4097 bytes", "00000000" + "00000001" + "00001001" + string.Concat(Enumerable.Repeat("61", 4097)) },
    };

    [Theory]
    [MemberData(nameof(MalformedPayloads))]
    public async Task MalformedRequestsAreInvalid(string _, string hex)
    {
        await using HandshakeServer server = await StructuredAsync();
        byte[] payload = Convert.FromHexString(hex);
        AssertError(await server.Client.OptionAsync(NbdOption.ListMetaContext, payload), NbdOption.ListMetaContext, NbdOptionReplyType.ErrInvalid);
        AssertError(await server.Client.OptionAsync(NbdOption.SetMetaContext, payload), NbdOption.SetMetaContext, NbdOptionReplyType.ErrInvalid);
        Assert.Equal(2, (await server.Client.OptionAsync(NbdOption.ListMetaContext, RawNbdClient.MetaContextPayload(""))).Count);
    }

    [Theory]
    [InlineData(NbdOption.StructuredReply)]
    [InlineData(NbdOption.ExtendedHeaders)]
    public async Task SetSelectsBaseAllocationWithANonZeroId(NbdOption replyStyle)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        AssertAck(await server.Client.OptionAsync(replyStyle), replyStyle);
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload("a", "base:allocation"));
        Assert.Equal(2, replies.Count);
        AssertReply(replies[0], NbdOption.SetMetaContext, NbdOptionReplyType.MetaContext);
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32BigEndian(replies[0].Payload));
        Assert.Equal("base:allocation"u8.ToArray(), replies[0].Payload[4..]);
        AssertReply(replies[1], NbdOption.SetMetaContext, NbdOptionReplyType.Ack, []);
    }

    [Fact]
    public async Task SetWithoutQueriesSelectsNothing()
    {
        await using HandshakeServer server = await StructuredAsync();
        AssertAck(await server.Client.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload("a")), NbdOption.SetMetaContext);
    }

    [Theory]
    [InlineData(NbdOption.ListMetaContext)]
    [InlineData(NbdOption.SetMetaContext)]
    public async Task UnknownExportIsErrUnknownWithAShortMessage(NbdOption option)
    {
        await using HandshakeServer server = await StructuredAsync(TestExports.Resolver());
        byte[] payload = RawNbdClient.MetaContextPayload(new string('z', 4096), "base:allocation");
        RawOptionReply error = AssertError(await server.Client.OptionAsync(option, payload), option, NbdOptionReplyType.ErrUnknown);
        Assert.True(error.Payload.Length < 200, $"ERR_UNKNOWN message of {error.Payload.Length} bytes");
    }

    [Fact]
    public async Task ContextSetForAnotherExportDoesNotAllowBlockStatus()
    {
        await using HandshakeServer server = await StructuredAsync(TestExports.Resolver());
        Assert.Equal(2, (await server.Client.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload("b", "base:allocation"))).Count);
        await server.Client.GoAsync("a");
        Task serving = await server.ServeInBackgroundAsync();

        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 4096, cookie: 1);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal(NbdError.Invalid, reply.Error);
        Assert.True(reply.IsDone);
        await server.Client.SendDisconnectAsync();
        await serving.WaitAsync(HandshakeServer.Timeout);
    }

    [Fact]
    public async Task FailedSetClearsAnEarlierSelection()
    {
        await using HandshakeServer server = await StructuredAsync(TestExports.Resolver());
        Assert.Equal(2, (await server.Client.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload("a", "base:allocation"))).Count);
        AssertError(await server.Client.OptionAsync(NbdOption.SetMetaContext, Convert.FromHexString("00000000" + "00000005")), NbdOption.SetMetaContext, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
        Task serving = await server.ServeInBackgroundAsync();

        await server.Client.SendRequestAsync(NbdCommand.BlockStatus, 0, 4096, cookie: 2);
        Assert.Equal(NbdError.Invalid, (await server.Client.ReadReplyAsync()).Error);
        await server.Client.SendDisconnectAsync();
        await serving.WaitAsync(HandshakeServer.Timeout);
    }

    [Fact]
    public async Task ThousandsOfQueriesGiveOneContextReply()
    {
        await using HandshakeServer server = await StructuredAsync();
        string[] queries = Enumerable.Repeat("base:", 6000).ToArray(); // 54 KB of queries, under the option cap
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.ListMetaContext, RawNbdClient.MetaContextPayload("", queries));
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], replies.Select(r => r.Type));
    }
}
