using NbdFast.Protocol;

namespace NbdFast.Tests.Negotiation;

/// <summary>The greeting, the client flags and the framing of option requests.</summary>
public class GreetingTests
{
    [Fact]
    public async Task GreetingIsNbdMagicIHaveOptAndFixedNewstyleNoZeroes()
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync();
        byte[] greeting = await server.Client.ReadGreetingAsync();
        // "NBDMAGIC", "IHAVEOPT", flags FIXED_NEWSTYLE | NO_ZEROES.
        Assert.Equal("4E42444D41474943" + "49484156454F5054" + "0003", Convert.ToHexString(greeting));
    }

    [Theory]
    [InlineData(0x0000_0004u)]
    [InlineData(0x8000_0001u)]
    [InlineData(0x0d0a_7878u)] // "\r\nxx": a telnet client
    public async Task UnknownClientFlagBitsCloseTheConnection(uint flags)
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync();
        await server.Client.ReadGreetingAsync();
        await server.Client.SendClientFlagsAsync(flags);
        await server.AssertHardDisconnectAsync();
    }

    [Fact]
    public async Task BadOptionMagicClosesTheConnection()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        byte[] header = new byte[16];
        HandshakeCodec.WriteOptionHeader(header, (uint)NbdOption.List, 0);
        header[7] ^= 0x01; // IHAVEOPT -> IHAVEOPU
        await server.Client.WriteAsync(header);
        await server.AssertHardDisconnectAsync();
    }

    [Theory]
    [InlineData(NbdOption.List)]
    [InlineData(NbdOption.Go)]
    [InlineData(NbdOption.StructuredReply)]
    [InlineData(NbdOption.Abort)]
    public async Task NonFixedClientSendingAnythingButExportNameIsDisconnected(NbdOption option)
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync(offer: ["a"]);
        await server.Client.StartAsync(NbdClientFlags.None);
        await server.Client.SendOptionAsync(option, option == NbdOption.Go ? Support.RawNbdClient.InfoPayload("a") : default);
        await server.AssertHardDisconnectAsync();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public async Task ConnectionClosedDuringClientFlagsFailsTheHandshake(int flagBytes)
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync();
        await server.Client.ReadGreetingAsync();
        await server.Client.WriteAsync(new byte[flagBytes]);
        server.Client.ShutdownSend();
        await server.AssertHardDisconnectAsync();
    }

    [Fact]
    public async Task ConnectionClosedBeforeTheGreetingFailsTheHandshake()
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync();
        await server.Client.DisposeAsync();
        await server.FailsWithAsync<NbdProtocolException>();
    }
}
