using System.Buffers.Binary;
using System.Text;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>INFO/GO payloads that lie about their lengths, and export names that are not valid strings.</summary>
public class MalformedInfoTests
{
    public static TheoryData<string, string> MalformedPayloads => new()
    {
        // name length 10 but only 3 name bytes and the count follow: namelen > optlen - 6
        { "namelen beyond payload", "0000000A" + "616263" + "0000" },
        { "namelen 0xFFFFFFFF", "FFFFFFFF" + "61" + "0000" },
        { "namelen 0xFFFFFFFA (wraps with +6)", "FFFFFFFA" + "61" + "0000" },
        { "shorter than 6 bytes", "000000" },
        { "info count 2 with one request", "00000001" + "61" + "0002" + "0001" },
        { "info count 0 with a request", "00000001" + "61" + "0000" + "0001" },
        { "info count 65535 with none", "00000001" + "61" + "FFFF" },
        { "odd trailing byte", "00000001" + "61" + "0001" + "000100" },
    };

    [Theory]
    [MemberData(nameof(MalformedPayloads))]
    public async Task MalformedInfoIsInvalidAndNegotiationContinues(string _, string hex)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.Info, Convert.FromHexString(hex)), NbdOption.Info, NbdOptionReplyType.ErrInvalid);
        AssertError(await server.Client.OptionAsync(NbdOption.Go, Convert.FromHexString(hex)), NbdOption.Go, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
        Assert.Equal("a", (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task ManyDuplicateInfoRequestsWithinTheOptionCapAreHandled()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        ushort[] requests = Enumerable.Repeat((ushort)NbdInfoType.Name, 30_000).ToArray();
        IReadOnlyList<RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.Info, RawNbdClient.InfoPayload("a"u8.ToArray(), requests));
        Assert.Equal(3, replies.Count);
        Assert.Single(replies, r => r.InfoType == NbdInfoType.Name);
        AssertReply(replies[^1], NbdOption.Info, NbdOptionReplyType.Ack, []);
    }

    [Theory]
    [InlineData("61 00 62")]   // "a\0b": strings must not contain NUL
    [InlineData("61 FF FE")]   // not UTF-8
    [InlineData("C0 AF")]      // overlong encoding of '/'
    [InlineData("ED A0 80")]   // a UTF-16 surrogate encoded in UTF-8
    public async Task NameThatIsNotAValidStringIsInvalid(string hex)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        byte[] payload = RawNbdClient.InfoPayload(Convert.FromHexString(hex.Replace(" ", "")));
        AssertError(await server.Client.OptionAsync(NbdOption.Go, payload), NbdOption.Go, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("b");
    }

    [Fact]
    public async Task NameOf4096BytesIsAccepted()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        RawExportInfo info = await server.Client.GoAsync(TestExports.LongName, NbdOption.Go, NbdInfoType.Name);
        Assert.Equal((ulong)TestExports.SizeA, info.Size);
        RawOptionReply name = info.Replies.Single(r => r.InfoType == NbdInfoType.Name);
        AssertReply(name, NbdOption.Go, NbdOptionReplyType.Info, InfoText(NbdInfoType.Name, TestExports.LongName));
        Assert.Equal(TestExports.LongName, (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task NameOf4097BytesIsInvalid()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        byte[] payload = RawNbdClient.InfoPayload(new string('n', 4097));
        AssertError(await server.Client.OptionAsync(NbdOption.Go, payload), NbdOption.Go, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
    }

    [Fact]
    public async Task UnknownNameOf4096BytesGetsAShortErrUnknown()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        string name = "\u001b" + new string('m', 4095); // an ANSI escape at the front, too
        RawOptionReply error = AssertError(await server.Client.OptionAsync(NbdOption.Go, RawNbdClient.InfoPayload(name)), NbdOption.Go, NbdOptionReplyType.ErrUnknown);
        Assert.True(error.Payload.Length < 200, $"ERR_UNKNOWN message of {error.Payload.Length} bytes");
        Assert.Equal(4096, Encoding.UTF8.GetByteCount(name));
    }

    [Fact]
    public async Task NameLengthFieldIsReadBigEndian()
    {
        // 0x00000001 is one byte; the little-endian reading (0x01000000) would be malformed.
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        byte[] payload = RawNbdClient.InfoPayload("b");
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(payload));
        RawExportInfo info = await server.Client.GoAsync("b", NbdOption.Info);
        Assert.Equal((ulong)TestExports.SizeB, info.Size);
    }

    [Fact]
    public async Task UnknownNameOf4096MultiByteBytesGetsABoundedErrUnknown()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        string name = string.Concat(Enumerable.Repeat("\u20AC", 1365)) + "x"; // 1365 three-byte euro signs + 1 byte
        Assert.Equal(4096, Encoding.UTF8.GetByteCount(name));
        RawOptionReply error = AssertError(await server.Client.OptionAsync(NbdOption.Info, RawNbdClient.InfoPayload(name)), NbdOption.Info, NbdOptionReplyType.ErrUnknown);
        Assert.True(error.Payload.Length < 512, $"ERR_UNKNOWN message of {error.Payload.Length} bytes");
    }
}
