using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Write-type requests on a read-only export.</summary>
public class ReadOnlyExportTests
{
    private const long Size = 1024 * 1024;

    [Theory]
    [InlineData(NbdCommand.Write)]
    [InlineData(NbdCommand.Trim)]
    [InlineData(NbdCommand.WriteZeroes)]
    public async Task WriteTypeRequestIsEpermAndEndsTheSession(NbdCommand command)
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, readOnly: true);
        Assert.True((server.Export.Flags & NbdTransmissionFlags.ReadOnly) != 0);
        Assert.True((server.Export.Flags & (NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes)) == 0);

        byte[] payload = command == NbdCommand.Write ? SimpleReplyTests.Pattern(4096) : [];
        await server.Client.SendRequestAsync(command, 0, 4096, cookie: 9, payload: payload);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((9ul, NbdError.Perm), (reply.Cookie, reply.Error));

        await server.StoppedAsync(); // ServeAsync returned normally
        await server.Client.AssertClosedAsync();
        Assert.Equal(0, device.CommittedBytes);
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Extended)]
    public async Task WithTheSessionKeptWriteIsEpermAndItsPayloadIsConsumed(ReplyStyle style)
    {
        var device = new MemoryDevice(Size);
        var options = new ServeOptions { EndSessionOnReadOnlyWrite = false };
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style, readOnly: true, options: options);

        await server.Client.SendWriteAsync(0, SimpleReplyTests.Pattern(8192), cookie: 1);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((1ul, NbdError.Perm), (reply.Cookie, reply.Error));
        await server.Client.SendRequestAsync(NbdCommand.Trim, 0, 4096, cookie: 2);
        Assert.Equal(NbdError.Perm, (await server.Client.ReadReplyAsync()).Error);

        await RequestErrorTests.AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ReadsWorkOnAReadOnlyExport()
    {
        var device = new MemoryDevice(Size);
        device.Write(100, [1, 2, 3]);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, readOnly: true);
        await server.Client.SendRequestAsync(NbdCommand.Read, 100, 3, cookie: 1);
        Assert.Equal(new byte[] { 1, 2, 3 }, (await server.Client.ReadReplyAsync(3)).Payload);
        await server.DisconnectAsync();
    }
}
