using NbdFast.Protocol;
using static NbdFast.Tests.Negotiation.OptionReplies;

namespace NbdFast.Tests.Negotiation;

/// <summary>STARTTLS without TLS, unknown options, and the limits on option size and count.</summary>
public class OptionLimitTests
{
    private static readonly NegotiationOptions NoDeadline = new() { HandshakeTimeout = Timeout.InfiniteTimeSpan };

    [Fact]
    public async Task StartTlsWithoutTlsIsRefusedByPolicy()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.StartTls), NbdOption.StartTls, NbdOptionReplyType.ErrPolicy);
        await server.Client.GoAsync("a");
    }

    [Fact]
    public async Task StartTlsWithPayloadIsInvalid()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(NbdOption.StartTls, new byte[] { 0x16, 0x03, 0x01 }), NbdOption.StartTls, NbdOptionReplyType.ErrInvalid);
        await server.Client.GoAsync("a");
    }

    [Theory]
    [InlineData(4u)]            // NBD_OPT_PEEK_EXPORT, withdrawn
    [InlineData(12u)]
    [InlineData(0x7FFF_FFFFu)]
    [InlineData(0x8000_0000u)]
    [InlineData(0xFFFF_FFFFu)]
    public async Task UnknownOptionWithPayloadIsUnsupportedAndTheNextOptionWorks(uint option)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        byte[] payload = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        AssertError(await server.Client.OptionAsync(option, payload), option, NbdOptionReplyType.ErrUnsup);
        AssertAck(await server.Client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
        await server.Client.GoAsync("a");
    }

    [Fact]
    public async Task UnknownOptionOfExactly64KiBIsConsumedAndUnsupported()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        AssertError(await server.Client.OptionAsync(0x1234u, new byte[64 * 1024]), 0x1234u, NbdOptionReplyType.ErrUnsup);
        await server.Client.GoAsync("a");
    }

    [Theory]
    [InlineData(64 * 1024 + 1)]
    [InlineData(0xFFFF_FFFFu)]
    public async Task OptionLongerThan64KiBClosesWithoutReadingIt(uint length)
    {
        // No deadline: a server that tried to read the payload would wait forever and the close would not come.
        await using HandshakeServer server = await HandshakeServer.StartedAsync(options: NoDeadline);
        await server.Client.SendOptionAsync(0x1234u, default, declaredLength: length);
        await server.Client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        await server.FailsWithAsync<NbdProtocolException>();
    }

    [Fact]
    public async Task GoLongerThan64KiBClosesWithoutReadingIt()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver(), options: NoDeadline);
        await server.Client.SendOptionAsync((uint)NbdOption.Go, Support.RawNbdClient.InfoPayload("a"), declaredLength: 100_000);
        await server.Client.AssertClosedAsync(TimeSpan.FromSeconds(5));
        await server.FailsWithAsync<NbdProtocolException>();
    }

    [Fact]
    public async Task ThirtyTwoOptionsAreAllowedTheThirtyThirdCloses()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        for (int i = 0; i < 32; i++)
        {
            AssertError(await server.Client.OptionAsync(0x4000u + (uint)i), 0x4000u + (uint)i, NbdOptionReplyType.ErrUnsup);
        }
        await server.Client.SendOptionAsync(NbdOption.StructuredReply);
        await server.AssertHardDisconnectAsync();
    }

    [Fact]
    public async Task TheThirtySecondOptionMayBeGo()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        for (int i = 0; i < 31; i++)
        {
            AssertError(await server.Client.OptionAsync(NbdOption.StartTls), NbdOption.StartTls, NbdOptionReplyType.ErrPolicy);
        }
        await server.Client.GoAsync("a");
        Assert.Equal("a", (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task RepeatedListDoesNotRefillTheOptionBudgetForever()
    {
        // Each LIST grants extra options so a client can ask about each listed export; granting them again on
        // every LIST lets a client send options without end (until the handshake deadline).
        await using HandshakeServer server = await HandshakeServer.StartedAsync(offer: ["a"], options: NoDeadline);
        int answered = 0;
        try
        {
            for (; answered < 500; answered++)
            {
                IReadOnlyList<Support.RawOptionReply> replies = await server.Client.OptionAsync(NbdOption.List);
                Assert.Equal(2, replies.Count);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
        }
        Assert.True(answered <= 32 + 32 * 1, $"{answered} LIST options were answered: the 32-option cap never applied");
    }
}
