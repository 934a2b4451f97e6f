using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>
/// FORCEDTLS (<see cref="NbdTlsMode.Required"/>) against a raw client: before STARTTLS every option but STARTTLS
/// and ABORT is refused with NBD_REP_ERR_TLS_REQD (its payload consumed), EXPORT_NAME hangs up, ABORT is
/// acknowledged; STARTTLS itself, the TLS handshake and the negotiation that continues inside TLS.
/// </summary>
public sealed class ForcedTlsNegotiationTests
{
    private const int TestTimeout = 30_000;
    private const string Export = "disk";

    private static TlsServerHost Start(int seed, out byte[] pattern, NbdTlsOptions? tls = null)
    {
        MemoryDevice device = TlsSetup.PatternDevice(seed, out pattern);
        return new TlsServerHost(tls ?? TlsSetup.Options(), new Dictionary<string, NbdExport> { [Export] = new(device, ReadOnly: false) });
    }

    public static TheoryData<string> RefusedOptions => new()
    {
        "INFO", "GO", "LIST", "STRUCTURED_REPLY", "STRUCTURED_REPLY+data", "EXTENDED_HEADERS",
        "LIST_META_CONTEXT", "SET_META_CONTEXT", "PEEK_EXPORT", "unknown+data",
    };

    private static (uint Option, byte[] Payload) Build(string name) => name switch
    {
        "INFO" => ((uint)NbdOption.Info, RawNbdClient.InfoPayload(Export, NbdInfoType.Name, NbdInfoType.BlockSize)),
        "GO" => ((uint)NbdOption.Go, RawNbdClient.InfoPayload(Export)),
        "LIST" => ((uint)NbdOption.List, []),
        "STRUCTURED_REPLY" => ((uint)NbdOption.StructuredReply, []),
        "STRUCTURED_REPLY+data" => ((uint)NbdOption.StructuredReply, TlsSetup.DistractingPayload()),
        "EXTENDED_HEADERS" => ((uint)NbdOption.ExtendedHeaders, []),
        "LIST_META_CONTEXT" => ((uint)NbdOption.ListMetaContext, RawNbdClient.MetaContextPayload(Export, NbdLimits.BaseAllocation)),
        "SET_META_CONTEXT" => ((uint)NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload(Export, NbdLimits.BaseAllocation)),
        "PEEK_EXPORT" => ((uint)NbdOption.PeekExport, []),
        "unknown+data" => (0x7A11u, TlsSetup.DistractingPayload()),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(RefusedOptions))]
    public async Task OptionBeforeStartTls_GetsTlsReqd_PayloadConsumed_ThenTlsSessionWorks(string name)
    {
        await using TlsServerHost server = Start(100, out byte[] pattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        (uint option, byte[] payload) = Build(name);

        RawOptionReply refused = await TlsSetup.ExpectSingleReplyAsync(plain, option, NbdOptionReplyType.ErrTlsReqd, payload);
        // The payload was consumed: the next option is parsed from the right place (and refused the same way).
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.Info, NbdOptionReplyType.ErrTlsReqd, RawNbdClient.InfoPayload(Export));
        Assert.DoesNotContain(Export, refused.Text, StringComparison.Ordinal);

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        // Inside TLS the options that were refused work.
        IReadOnlyList<RawOptionReply> list = await tls.OptionAsync(NbdOption.List);
        Assert.Equal([NbdOptionReplyType.Server, NbdOptionReplyType.Ack], list.Select(r => r.Type));
        await TlsSetup.GoReadAndDisconnectAsync(tls, Export, pattern);

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.True(connection.Error is null, server.Describe());
        Assert.True(connection.TlsActive, server.Describe());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task AllRefusedOptionsBackToBack_InOneWrite_EachGetsTlsReqd()
    {
        await using TlsServerHost server = Start(101, out byte[] pattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        var batch = new MemoryStream();
        var expected = new List<uint>();
        foreach (string name in RefusedOptions)
        {
            (uint option, byte[] payload) = Build(name);
            var header = new byte[NbdLimits.OptionHeaderSize];
            HandshakeCodec.WriteOptionHeader(header, option, (uint)payload.Length);
            batch.Write(header);
            batch.Write(payload);
            expected.Add(option);
        }
        await plain.WriteAsync(batch.ToArray());
        foreach (uint option in expected)
        {
            RawOptionReply reply = await plain.ReadOptionReplyAsync();
            Assert.Equal(option, reply.Header.Option);
            Assert.Equal(NbdOptionReplyType.ErrTlsReqd, reply.Type);
        }
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await TlsSetup.GoReadAndDisconnectAsync(tls, Export, pattern);
        Assert.Null((await server.SingleConnectionAsync()).Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ExportNameBeforeStartTls_ClosesTheConnectionWithoutAReply()
    {
        await using TlsServerHost server = Start(102, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        await plain.SendOptionAsync(NbdOption.ExportName, System.Text.Encoding.UTF8.GetBytes(Export));

        await plain.AssertClosedAsync();
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<NbdProtocolException>(connection.Error);
        Assert.False(connection.Negotiated);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task AbortBeforeStartTls_IsAcknowledged()
    {
        await using TlsServerHost server = Start(103, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.Abort, NbdOptionReplyType.Ack);

        await plain.AssertClosedAsync();
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<ClientRequestedAbortException>(connection.Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task AbortInsideTls_IsAcknowledgedOverTls()
    {
        await using TlsServerHost server = Start(104, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);

        await TlsSetup.ExpectSingleReplyAsync(tls, (uint)NbdOption.Abort, NbdOptionReplyType.Ack);

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<ClientRequestedAbortException>(connection.Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task StartTlsWithPayload_GetsInvalid_ThenPlainStartTlsWorks()
    {
        await using TlsServerHost server = Start(105, out byte[] pattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();

        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.ErrInvalid, TlsSetup.DistractingPayload());

        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);
        await TlsSetup.GoReadAndDisconnectAsync(tls, Export, pattern);
        Assert.Null((await server.SingleConnectionAsync()).Error);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task SecondStartTls_InsideTls_GetsInvalid_AndTheSessionContinues()
    {
        await using TlsServerHost server = Start(106, out byte[] pattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);

        await TlsSetup.ExpectSingleReplyAsync(tls, (uint)NbdOption.StartTls, NbdOptionReplyType.ErrInvalid);

        await TlsSetup.GoReadAndDisconnectAsync(tls, Export, pattern);
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.True(connection.TlsActive);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task InsideTls_StructuredRepliesMetaContextAndWrites_Work()
    {
        await using TlsServerHost server = Start(107, out byte[] pattern);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await using RawNbdClient tls = await TlsSetup.StartTlsAsync(plain);

        await TlsSetup.ExpectSingleReplyAsync(tls, (uint)NbdOption.StructuredReply, NbdOptionReplyType.Ack);
        IReadOnlyList<RawOptionReply> meta = await tls.OptionAsync(NbdOption.SetMetaContext, RawNbdClient.MetaContextPayload(Export, NbdLimits.BaseAllocation));
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], meta.Select(r => r.Type));
        await tls.GoAsync(Export);

        byte[] data = new byte[8192];
        new Random(7).NextBytes(data);
        await tls.SendWriteAsync(65536, data, cookie: 1);
        RawReply write = await tls.ReadReplyAsync();
        Assert.Equal(NbdError.None, write.Error);
        await tls.SendRequestAsync(NbdCommand.Read, 65536 - 4096, 4096 + 8192, cookie: 2);
        IReadOnlyList<RawReply> read = await tls.ReadFullReplyAsync();
        Assert.All(read, r => Assert.True(r.IsStructured));
        byte[] got = new byte[4096 + 8192];
        foreach (RawReply chunk in read.Where(r => r.Header.Type != NbdReplyType.None))
        {
            ulong at = BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload) - (65536 - 4096);
            if (chunk.Header.Type == NbdReplyType.OffsetData)
            {
                chunk.Payload.AsSpan(8).CopyTo(got.AsSpan((int)at));
            }
            else
            {
                Assert.Equal(NbdReplyType.OffsetHole, chunk.Header.Type);
            }
        }
        Assert.Equal([.. pattern.AsSpan(65536 - 4096), .. data], got);
        await tls.SendRequestAsync(NbdCommand.BlockStatus, 0, 65536, cookie: 3);
        IReadOnlyList<RawReply> status = await tls.ReadFullReplyAsync();
        Assert.Equal(NbdError.None, status[^1].Error);
        Assert.Contains(status, r => r.Header.Type == NbdReplyType.BlockStatus);
        await tls.SendDisconnectAsync();
        await tls.AssertClosedAsync();

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.Null(connection.Error);
        Assert.True(connection.StructuredReplies);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task PlaintextPipelinedBehindStartTls_IsNeverAnsweredInClear()
    {
        // CVE-2021-3716-style injection: a GO sent in clear right behind STARTTLS must not be acted on.
        await using TlsServerHost server = Start(108, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        var both = new byte[NbdLimits.OptionHeaderSize * 2 + RawNbdClient.InfoPayload(Export).Length];
        HandshakeCodec.WriteOptionHeader(both, (uint)NbdOption.StartTls, 0);
        byte[] go = RawNbdClient.InfoPayload(Export);
        HandshakeCodec.WriteOptionHeader(both.AsSpan(NbdLimits.OptionHeaderSize), (uint)NbdOption.Go, (uint)go.Length);
        go.CopyTo(both, NbdLimits.OptionHeaderSize * 2);

        await plain.WriteAsync(both);

        RawOptionReply ack = await plain.ReadOptionReplyAsync();
        Assert.Equal(NbdOptionReplyType.Ack, ack.Type);
        Assert.Equal((uint)NbdOption.StartTls, ack.Header.Option);
        // Whatever follows (a TLS alert at most) must not be an option reply, and the server must hang up.
        var rest = new MemoryStream();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
        {
            var buffer = new byte[4096];
            try
            {
                int n;
                while ((n = await plain.Stream.ReadAsync(buffer, cts.Token)) > 0)
                {
                    rest.Write(buffer, 0, n);
                }
            }
            catch (IOException)
            {
            }
        }
        byte[] magic = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(magic, NbdMagic.OptionReply);
        Assert.True(rest.ToArray().AsSpan().IndexOf(magic) < 0, "An option reply was sent in clear after STARTTLS: " + Convert.ToHexString(rest.ToArray()));
        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<NbdProtocolException>(connection.Error);
        Assert.False(connection.Negotiated);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task ClientThatHangsUpDuringTheHandshake_EndsAsProtocolError()
    {
        await using TlsServerHost server = Start(109, out _);
        await using RawNbdClient plain = await server.ConnectRawAsync();
        await plain.StartAsync();
        await TlsSetup.ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.Ack);
        await plain.WriteAsync(new byte[] { 0x16, 0x03, 0x01 }); // the start of a ClientHello record, then nothing
        plain.ShutdownSend();

        TlsServerConnection connection = await server.SingleConnectionAsync();
        Assert.IsType<NbdProtocolException>(connection.Error);
    }
}
