using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Commands and flags whose transmission flag was not advertised are refused with EINVAL.</summary>
public class UnadvertisedCommandTests
{
    [Theory]
    [InlineData(BlockDeviceCapabilities.None, NbdCommand.Flush, NbdCommandFlags.None)]
    [InlineData(BlockDeviceCapabilities.Flush, NbdCommand.Trim, NbdCommandFlags.None)]
    [InlineData(BlockDeviceCapabilities.Flush, NbdCommand.WriteZeroes, NbdCommandFlags.None)]
    [InlineData(BlockDeviceCapabilities.Flush, NbdCommand.Cache, NbdCommandFlags.None)]
    [InlineData(BlockDeviceCapabilities.Flush, NbdCommand.Write, NbdCommandFlags.Fua)]
    [InlineData(BlockDeviceCapabilities.Flush, NbdCommand.Read, NbdCommandFlags.Fua)]
    [InlineData(BlockDeviceCapabilities.WriteZeroes, NbdCommand.WriteZeroes, NbdCommandFlags.FastZero)]
    public async Task UnadvertisedCommandOrFlagIsEinval(BlockDeviceCapabilities capabilities, NbdCommand command, NbdCommandFlags flags)
    {
        var device = new GatedDevice(1024 * 1024, capabilities);
        device.Open();
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        Assert.Equal(capabilities.HasFlag(BlockDeviceCapabilities.Flush), server.Export.Flags.HasFlag(NbdTransmissionFlags.SendFlush));
        Assert.False(server.Export.Flags.HasFlag(NbdTransmissionFlags.SendFua));

        uint length = command == NbdCommand.Flush ? 0u : 4096u;
        byte[] payload = command == NbdCommand.Write ? new byte[4096] : [];
        await server.Client.SendRequestAsync(command, 0, length, cookie: 1, flags, payload);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((1ul, NbdError.Invalid), (reply.Cookie, reply.Error));
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.Inner.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task DontFragmentOnAWriteIsEinvalEvenWithStructuredReplies()
    {
        var device = new MemoryDevice(65536);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured);
        await server.Client.SendWriteAsync(0, new byte[512], cookie: 1, NbdCommandFlags.DontFragment);
        Assert.Equal(NbdError.Invalid, (await server.Client.ReadReplyAsync()).Error);
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }
}
