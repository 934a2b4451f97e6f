using System.Buffers.Binary;
using System.Text;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>
/// SELECTIVETLS (<see cref="NbdTlsMode.Optional"/>): TLS-only exports are hidden and refused until STARTTLS,
/// the others are served in clear; STARTTLS resets what was negotiated before it. And NOTLS: STARTTLS on a
/// channel without credentials gets NBD_REP_ERR_POLICY.
/// </summary>
public sealed class SelectiveTlsNegotiationTests
{
    private const int TestTimeout = 30_000;
    private const string Clear = "clear";
    private const string Secret = "secret";

    private static TlsServerHost Start(int seed, out byte[] clearPattern, out byte[] secretPattern, NbdTlsOptions? tls = null)
    {
        MemoryDevice clear = TlsSetup.PatternDevice(seed, out clearPattern);
        MemoryDevice secret = TlsSetup.PatternDevice(seed + 1, out secretPattern);
        return new TlsServerHost(tls ?? TlsSetup.Options(NbdTlsMode.Optional), new Dictionary<string, NbdExport>
        {
            [Clear] = new(clear, ReadOnly: false, Description: "served in clear"),
            [Secret] = new(secret, ReadOnly: false, Description: "TLS only", TlsOnly: true),
        }, offer: [Clear, Secret]);
    }

    private static async Task<string[]> ListAsync(RawNbdClient client)
    {
        IReadOnlyList<RawOptionReply> replies = await client.OptionAsync(NbdOption.List);
        Assert.Equal(NbdOptionReplyType.Ack, replies[^1].Type);
        Assert.All(replies.SkipLast(1), r => Assert.Equal(NbdOptionReplyType.Server, r.Type));
        return [.. replies.SkipLast(1).Select(r => Encoding.UTF8.GetString(r.Payload, 4, (int)BinaryPrimitives.ReadUInt32BigEndian(r.Payload)))];
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ListBeforeTls_HidesTheTlsOnlyExport_ListInsideTls_ShowsBoth()
    {
        await using TlsServerHost server = Start(200, out byte[] clearPattern, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        Assert.Equal([Clear], await ListAsync(plain));

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        Assert.Equal([Clear, Secret], await ListAsync(tls));
        await TlsSetup.GoReadAndDisconnectAsync(tls, Clear, clearPattern);
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.True(connection.TlsActive);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task InfoAndGoOnTlsOnlyOrUnknownNames_BeforeTls_GetTlsReqd_ThenClearExportIsServedInClear()
    {
        await using TlsServerHost server = Start(210, out byte[] clearPattern, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        foreach (NbdOption option in new[] { NbdOption.Info, NbdOption.Go })
        {
            foreach (string name in new[] { Secret, "no-such-export" })
            {
                RawOptionReply refused = await TlsSetup.ExpectSingleReplyAsync(plain, (uint)option, NbdOptionReplyType.ErrTlsReqd, RawNbdClient.InfoPayload(name));
                Assert.DoesNotContain(Secret, refused.Text, StringComparison.Ordinal);
            }
        }
        // A clear export answers INFO with its details, without TLS.
        RawExportInfo info = await plain.GoAsync(Clear, NbdOption.Info);
        Assert.Equal((ulong)TlsSetup.DeviceSize, info.Size);

        await TlsSetup.GoReadAndDisconnectAsync(plain, Clear, clearPattern);
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.False(connection.TlsActive);
        Assert.Equal(Clear, connection.ExportName);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task GoOnTlsOnlyExport_InsideTls_Works()
    {
        await using TlsServerHost server = Start(220, out _, out byte[] secretPattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.Go, NbdOptionReplyType.ErrTlsReqd, RawNbdClient.InfoPayload(Secret));

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await TlsSetup.GoReadAndDisconnectAsync(tls, Secret, secretPattern);

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.True(connection.TlsActive);
        Assert.Equal(Secret, connection.ExportName);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task SetMetaContextOnTlsOnlyExport_BeforeTls_GetsTlsReqd()
    {
        await using TlsServerHost server = Start(230, out byte[] clearPattern, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StructuredReply, NbdOptionReplyType.Ack);

        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.SetMetaContext, NbdOptionReplyType.ErrTlsReqd,
            RawNbdClient.MetaContextPayload(Secret, NbdLimits.BaseAllocation));
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.ListMetaContext, NbdOptionReplyType.ErrTlsReqd,
            RawNbdClient.MetaContextPayload(Secret));

        await plain.SendOptionAsync(NbdOption.Abort);
        Assert.Equal(NbdOptionReplyType.Ack, (await plain.ReadOptionReplyAsync()).Type);
        Assert.IsType<ClientRequestedAbortException>((await server.SingleConnectionAsync()).Error);
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(Clear, true)]
    [InlineData(Secret, false)]
    public async Task ExportNameBeforeTls_ServesClearExport_ClosesOnTlsOnlyExport(string name, bool served)
    {
        await using TlsServerHost server = Start(240, out byte[] clearPattern, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        await plain.SendOptionAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes(name));

        if (served)
        {
            (ulong size, _, _) = await plain.ExportNameAsyncReplyOnly();
            Assert.Equal((ulong)TlsSetup.DeviceSize, size);
            await plain.SendRequestAsync(NbdCommand.Read, 0, 512, cookie: 5);
            RawReply read = await plain.ReadReplyAsync(512);
            Assert.Equal(clearPattern.AsSpan(0, 512).ToArray(), read.Payload);
            await plain.SendDisconnectAsync();
            await plain.AssertClosedAsync();
            Assert.Null((await server.SingleConnectionAsync()).Error);
        }
        else
        {
            await plain.AssertClosedAsync();
            Assert.IsType<NbdProtocolException>((await server.SingleConnectionAsync()).Error);
        }
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(NbdOption.StructuredReply)]
    [InlineData(NbdOption.ExtendedHeaders)]
    public async Task StateNegotiatedBeforeStartTls_IsForgotten(NbdOption replyStyle)
    {
        await using TlsServerHost server = Start(250, out byte[] clearPattern, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)replyStyle, NbdOptionReplyType.Ack);
        IReadOnlyList<RawOptionReply> meta = await plain.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload(Clear, NbdLimits.BaseAllocation));
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], meta.Select(r => r.Type));

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        RawExportInfo info = await tls.GoAsync(Clear);
        Assert.Equal((ulong)TlsSetup.DeviceSize, info.Size);

        // Neither structured replies nor extended headers are in effect: a READ gets a simple reply...
        await tls.SendRequestAsync(NbdCommand.Read, 0, 4096, cookie: 11);
        RawReply read = await tls.ReadReplyAsync(4096);
        Assert.True(read.IsSimple, $"READ after STARTTLS got a {(read.IsExtended ? "extended" : "structured")} reply");
        Assert.Equal(11UL, read.Cookie);
        Assert.Equal(clearPattern.AsSpan(0, 4096).ToArray(), read.Payload);
        // ...and base:allocation is no longer selected, so BLOCK_STATUS is invalid.
        await tls.SendRequestAsync(NbdCommand.BlockStatus, 0, 4096, cookie: 12);
        RawReply status = await tls.ReadReplyAsync();
        Assert.True(status.IsSimple);
        Assert.Equal(12UL, status.Cookie);
        Assert.Equal(NbdError.Invalid, status.Error);
        await tls.SendDisconnectAsync();
        await tls.AssertClosedAsync();

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.True(connection.TlsActive);
        Assert.False(connection.StructuredReplies);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task StructuredReplyBeforeStartTls_CanBeNegotiatedAgainInsideTls()
    {
        await using TlsServerHost server = Start(260, out _, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StructuredReply, NbdOptionReplyType.Ack);
        // Without the reset this would be ERR_INVALID ("already negotiated").
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StructuredReply, NbdOptionReplyType.ErrInvalid);

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await TlsSetup.ExpectSingleReplyAsync(tls, (uint)NbdOption.StructuredReply, NbdOptionReplyType.Ack);
        // Meta contexts need SET again too: LIST_META_CONTEXT still works, and the fresh SET is honoured.
        IReadOnlyList<RawOptionReply> meta = await tls.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload(Clear, NbdLimits.BaseAllocation));
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], meta.Select(r => r.Type));
        await tls.GoAsync(Clear);
        await tls.SendRequestAsync(NbdCommand.BlockStatus, 0, 4096, cookie: 13);
        IReadOnlyList<RawReply> status = await tls.ReadFullReplyAsync();
        Assert.All(status, r => Assert.True(r.IsStructured));
        Assert.Equal(NbdError.None, status[^1].Error);
        await tls.SendDisconnectAsync();
        await tls.AssertClosedAsync();
        Assert.Null((await server.SingleConnectionAsync()).Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task NoTls_StartTlsGetsPolicy_AndTheClearSessionContinues()
    {
        MemoryDevice device = TlsSetup.PatternDevice(270, out byte[] pattern);
        await using var server = new TlsServerHost(null, new Dictionary<string, NbdExport> { ["disk"] = new(device) });
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.ErrPolicy);
        // STARTTLS with data on a NOTLS server: still refused, and the stream stays in sync.
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.ErrInvalid, new byte[5]);

        await TlsSetup.GoReadAndDisconnectAsync(plain, "disk", pattern);
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.False(connection.TlsActive);
    }
}

internal static class RawNbdClientTlsExtensions
{
    /// <summary>Reads the reply to an EXPORT_NAME already sent (NO_ZEROES was negotiated by StartAsync).</summary>
    public static async Task<(ulong Size, NbdTransmissionFlags Flags, byte[] Padding)> ExportNameAsyncReplyOnly(this RawNbdClient client)
    {
        byte[] reply = await client.ReadBytesAsync(NbdLimits.ExportNameReplySize);
        return (BinaryPrimitives.ReadUInt64BigEndian(reply), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8)), []);
    }
}
