using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Transmission;

/// <summary>Input that loses framing: the only safe answer is to close the connection.</summary>
public class FramingTests
{
    private const long Size = 1024 * 1024;

    [Theory]
    [InlineData(ReplyStyle.Simple, 0x25609514u)]     // one bit off NBD_REQUEST_MAGIC
    [InlineData(ReplyStyle.Simple, NbdMagic.ExtendedRequest)] // extended magic without negotiating it
    [InlineData(ReplyStyle.Extended, NbdMagic.Request)]       // compact magic after negotiating extended headers
    [InlineData(ReplyStyle.Structured, 0u)]
    public async Task BadRequestMagicClosesTheConnection(ReplyStyle style, uint magic)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size), style);
        byte[] request = server.Client.EncodeRequest((ushort)NbdCommand.Read, 0, 512, cookie: 1);
        BinaryPrimitives.WriteUInt32BigEndian(request, magic);
        await server.Client.WriteAsync(request);
        await server.Client.AssertClosedAsync();
        await server.StoppedAsync();
    }

    [Fact]
    public async Task WriteOfFourGiBClosesTheConnectionWithoutAReply()
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        await server.Client.SendRequestAsync(NbdCommand.Write, 0, 0xFFFF_FFFF, cookie: 1, payload: new byte[4096]);
        await server.Client.AssertClosedAsync();
        await server.StoppedAsync();
        Assert.Equal(0, device.CommittedBytes);
    }

    [Fact]
    public async Task TruncatedWritePayloadThenEndOfStreamIsNotApplied()
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        byte[] request = server.Client.EncodeRequest((ushort)NbdCommand.Write, 0, 65536, cookie: 1);
        byte[] part = new byte[40_000];
        Array.Fill(part, (byte)0xEE);
        await server.Client.WriteAsync(request);
        await server.Client.WriteAsync(part);
        server.Client.ShutdownSend();

        await server.StoppedAsync();
        await server.Client.AssertClosedAsync();
        Assert.Equal(0, device.CommittedBytes);
        var stored = new byte[65536];
        device.Read(0, stored);
        Assert.All(stored, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task TruncatedRequestHeaderThenEndOfStreamEndsTheSession()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size));
        byte[] request = server.Client.EncodeRequest((ushort)NbdCommand.Read, 0, 512, cookie: 1);
        await server.Client.WriteAsync(request.AsMemory(0, 20));
        server.Client.ShutdownSend();
        await server.StoppedAsync();
        await server.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task ClientClosingAtOnceEndsTheSession()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size));
        server.Client.ShutdownSend();
        await server.StoppedAsync();
        await server.Client.AssertClosedAsync();
    }
}
