using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>NBD_OPT_INFO and NBD_OPT_GO, with and without an export resolver.</summary>
public class InfoAndGoTests
{
    [Theory]
    [InlineData(NbdOption.Info)]
    [InlineData(NbdOption.Go)]
    public async Task SuccessIsInfoExportThenAck(NbdOption option)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(option, RawNbdClient.InfoPayload("b"));
        Assert.Equal(2, replies.Count);
        // INFO_EXPORT: type 0, size 2 MiB, flags 0x050F.
        AssertReply(replies[0], option, NbdOptionReplyType.Info, Convert.FromHexString("0000" + "0000000000200000" + "050F"));
        AssertReply(replies[1], option, NbdOptionReplyType.Ack, []);
    }

    [Theory]
    [InlineData(NbdOption.Info)]
    [InlineData(NbdOption.Go)]
    public async Task NameDescriptionAndBlockSizeAreSentWhenRequested(NbdOption option)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        // Duplicates and an unknown type (0xFFFF) must be tolerated; unknown types are ignored.
        byte[] payload = RawNbdClient.InfoPayload("a"u8.ToArray(), 1, 2, 3, 0xFFFF);
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(option, payload);

        Assert.Equal(5, replies.Count);
        AssertReply(replies[^1], option, NbdOptionReplyType.Ack, []);
        Assert.All(replies.Take(4), r => AssertReply(r, option, NbdOptionReplyType.Info));
        var byType = replies.Take(4).ToDictionary(r => r.InfoType!.Value, r => Convert.ToHexString(r.Payload));
        Assert.Equal(Convert.ToHexString(InfoExport(TestExports.SizeA, TestExports.FlagsA)), byType[NbdInfoType.Export]);
        Assert.Equal(Convert.ToHexString(InfoText(NbdInfoType.Name, "a")), byType[NbdInfoType.Name]);
        Assert.Equal(Convert.ToHexString(InfoText(NbdInfoType.Description, TestExports.DescriptionA)), byType[NbdInfoType.Description]);
        // BLOCK_SIZE: type 3, minimum 1, preferred 4096, maximum payload 32 MiB.
        Assert.Equal("0003" + "00000001" + "00001000" + "02000000", byType[NbdInfoType.BlockSize]);
        if (option == NbdOption.Go)
        {
            Assert.Equal("a", (await server.ConnectedAsync()).Name);
        }
        else
        {
            // INFO leaves the client in negotiation.
            AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        }
    }

    [Fact]
    public async Task UnknownNameIsErrUnknownAndTheClientMayGoAgain()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.Info, RawNbdClient.InfoPayload("nope")), NbdOption.Info, NbdOptionReplyType.ErrUnknown);
        AssertError(await server.Client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("nope")), NbdOption.Go, NbdOptionReplyType.ErrUnknown);
        Assert.False(server.Connecting.IsCompleted);

        RawExportInfo info = await server.Client.GoAsync("a");
        Assert.Equal((ulong)TestExports.SizeA, info.Size);
        (string name, NbdConnection connection) = await server.ConnectedAsync();
        Assert.Equal("a", name);
        Assert.Equal(TestExports.DescriptionA, connection.Export?.Description);
    }

    [Fact]
    public async Task GoDescribesItsOwnExportAfterInfoOnOthers()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        RawExportInfo infoA = await server.Client.GoAsync("a", NbdOption.Info);
        RawExportInfo infoB = await server.Client.GoAsync("b", NbdOption.Info);
        Assert.Equal((ulong)TestExports.SizeB, infoB.Size);
        Assert.Equal(TestExports.FlagsB, (ushort)infoB.Flags);

        RawExportInfo go = await server.Client.GoAsync("a", NbdOption.Go, NbdInfoType.Name);
        Assert.Equal((ulong)TestExports.SizeA, go.Size);
        Assert.Equal(TestExports.FlagsA, (ushort)go.Flags);
        Assert.Equal(infoA.Flags, go.Flags);
        AssertReply(go.Replies.Single(r => r.InfoType == NbdInfoType.Name), NbdOption.Go, NbdOptionReplyType.Info, InfoText(NbdInfoType.Name, "a"));
        Assert.Equal("a", (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task GoWithoutResolverIsAnsweredByServeAsyncWithTheDevice()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        await server.Client.SendOptionAsync(NbdOption.Go, RawNbdClient.InfoPayload("anything", NbdInfoType.Name));
        (string name, _) = await server.ConnectedAsync();
        Assert.Equal("anything", name);

        Task serving = await server.ServeInBackgroundAsync(new MemoryDevice(3 * 4096), readOnly: true);
        IReadOnlyList<RawOptionReply> replies = await server.Client.ReadOptionRepliesAsync();
        Assert.Equal(3, replies.Count);
        // Read-only MemoryDevice: HAS_FLAGS, READ_ONLY, SEND_FLUSH, SEND_FUA, CAN_MULTI_CONN, SEND_CACHE.
        AssertReply(replies[0], NbdOption.Go, NbdOptionReplyType.Info, InfoExport(3 * 4096, 0x050F));
        AssertReply(replies[1], NbdOption.Go, NbdOptionReplyType.Info, InfoText(NbdInfoType.Name, "anything"));
        AssertReply(replies[2], NbdOption.Go, NbdOptionReplyType.Ack, []);

        await server.Client.SendDisconnectAsync();
        await serving.WaitAsync(HandshakeServer.Timeout);
        await server.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task InfoWithoutResolverIsUnsupported()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        AssertError(await server.Client.OptionAsync(NbdOption.Info, RawNbdClient.InfoPayload("x")), NbdOption.Info, NbdOptionReplyType.ErrUnsup);
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
    }

    [Fact]
    public async Task GoWithResolverServesTheResolvedExport()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        await server.Client.GoAsync("a");
        Task serving = await server.ServeInBackgroundAsync();
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 16, cookie: 7);
        RawReply reply = await server.Client.ReadReplyAsync(16);
        Assert.Equal(NbdError.None, reply.Error);
        Assert.Equal(7ul, reply.Cookie);
        Assert.Equal(new byte[16], reply.Payload);
        await server.Client.SendDisconnectAsync();
        await serving.WaitAsync(HandshakeServer.Timeout);
    }

    [Theory]
    [InlineData(NbdOption.Info)]
    [InlineData(NbdOption.Go)]
    public async Task NonDefaultBlockSizesAreAdvertisedEvenWhenNotRequested(NbdOption option)
    {
        // The spec ("Size constraints"): a server with size constraints other than the default SHOULD advertise
        // them with NBD_INFO_BLOCK_SIZE in reply to INFO/GO, and MUST do so unless they were agreed out of band
        // (or else refuse with NBD_REP_ERR_BLOCK_SIZE_REQD).
        var device = new MemoryDevice(1024 * 1024, maxPayload: 64 * 1024);
        NbdExportResolver resolver = (name, _) => ValueTask.FromResult<NbdExport?>(new NbdExport(device, ReadOnly: false));
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: resolver);
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(option, RawNbdClient.InfoPayload("small"));
        if (replies[^1].Type == NbdOptionReplyType.ErrBlockSizeReqd)
        {
            return;
        }
        AssertReply(replies[^1], option, NbdOptionReplyType.Ack, []);
        RawOptionReply? blockSize = replies.FirstOrDefault(r => r.InfoType == NbdInfoType.BlockSize);
        Assert.True(blockSize is not null, "no NBD_INFO_BLOCK_SIZE for an export whose maximum payload is 64 KiB, not the default 32 MiB");
        Assert.Equal("0003" + "00000001" + "00001000" + "00010000", Convert.ToHexString(blockSize.Payload));
    }
}
