using System.Text;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Negotiation;

/// <summary>NBD_OPT_EXPORT_NAME: the reply (with and without the 124 zero bytes) and the cases that can only hang up.</summary>
public class ExportNameTests
{
    [Theory]
    [InlineData(NbdClientFlags.None, true)]
    [InlineData(NbdClientFlags.NoZeroes, false)]
    [InlineData(NbdClientFlags.FixedNewstyle, true)]
    [InlineData(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes, false)]
    public async Task ExportNameWithoutResolverIsAnsweredByServeAsync(NbdClientFlags flags, bool zeroes)
    {
        await using HandshakeServer server = await HandshakeServer.StartAsync();
        await server.Client.StartAsync(flags);
        var reply = server.Client.ExportNameAsync("disk", expectZeroes: zeroes);

        (string name, _) = await server.ConnectedAsync();
        Assert.Equal("disk", name);
        Task serving = await server.ServeInBackgroundAsync(new MemoryDevice(TestExports.SizeA));

        (ulong size, NbdTransmissionFlags transmissionFlags, byte[] padding) = await reply;
        Assert.Equal((ulong)TestExports.SizeA, size);
        Assert.Equal(TestExports.FlagsA, (ushort)transmissionFlags);
        Assert.Equal(zeroes ? new byte[124] : [], padding);

        // Nothing follows the reply: after DISC the connection closes with no further bytes.
        await server.Client.SendDisconnectAsync();
        await serving.WaitAsync(HandshakeServer.Timeout);
        await server.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task ExportNameWithResolverIsAnsweredDuringNegotiation()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        (ulong size, NbdTransmissionFlags flags, byte[] padding) = await server.Client.ExportNameAsync("b", expectZeroes: false);
        Assert.Equal((ulong)TestExports.SizeB, size);
        Assert.Equal(TestExports.FlagsB, (ushort)flags);
        Assert.Empty(padding);

        (string name, NbdConnection connection) = await server.ConnectedAsync();
        Assert.Equal("b", name);
        Assert.Equal(TestExports.DescriptionB, connection.Export?.Description);
    }

    [Fact]
    public async Task ExportNameForUnknownExportClosesTheConnection()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        await server.Client.SendOptionAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes("missing"));
        await server.AssertHardDisconnectAsync();
    }

    [Fact]
    public async Task ExportNameOf4096BytesIsAccepted()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        (ulong size, _, _) = await server.Client.ExportNameAsync(TestExports.LongName, expectZeroes: false);
        Assert.Equal((ulong)TestExports.SizeA, size);
        Assert.Equal(TestExports.LongName, (await server.ConnectedAsync()).Name);
    }

    [Fact]
    public async Task ExportNameOf4097BytesClosesTheConnection()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        await server.Client.SendOptionAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes(new string('n', 4097)));
        await server.AssertHardDisconnectAsync();
    }

    [Theory]
    [InlineData("61 00 62")] // "a\0b"
    [InlineData("61 FF FE")] // invalid UTF-8
    public async Task ExportNameThatIsNotAValidStringClosesTheConnection(string hex)
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync();
        await server.Client.SendOptionAsync(NbdOption.ExportName, Convert.FromHexString(hex.Replace(" ", "")));
        await server.AssertHardDisconnectAsync();
    }

    [Fact]
    public async Task ExportNameAfterExtendedHeadersClosesTheConnection()
    {
        await using HandshakeServer server = await HandshakeServer.StartedAsync(resolver: TestExports.Resolver());
        OptionReplies.AssertAck(await server.Client.OptionAsync(NbdOption.ExtendedHeaders), NbdOption.ExtendedHeaders);
        await server.Client.SendOptionAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes("a"));
        await server.AssertHardDisconnectAsync();
    }
}
