using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Devices that advertise a maximum payload other than the 32 MiB default.</summary>
public class MaxPayloadTests
{
    private const int KiB = 1024;

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Extended)]
    public async Task SmallMaximumIsEnforcedCleanly(ReplyStyle style)
    {
        var device = new MemoryDevice(1024 * KiB, maxPayload: 64 * KiB);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);

        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 64 * KiB + 1, cookie: 1);
        Assert.Equal(NbdError.Overflow, (await server.Client.ReadReplyAsync()).Error);
        await server.Client.SendWriteAsync(0, new byte[64 * KiB + 1], cookie: 2);
        Assert.Equal(NbdError.Overflow, (await server.Client.ReadReplyAsync()).Error);
        Assert.Equal(0, device.CommittedBytes);

        await server.Client.SendWriteAsync(0, new byte[64 * KiB], cookie: 3);
        Assert.Equal(NbdError.None, (await server.Client.ReadReplyAsync()).Error);
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    /// <summary>
    /// The spec allows advertising 0xFFFFFFFF ("no fixed limit"), and MemoryDevice accepts it. A READ the
    /// server cannot buffer must still be refused with an error reply, never escape ServeAsync as an exception.
    /// </summary>
    [Theory]
    [InlineData(0xFFFF_FFFFu)]
    [InlineData(0x7FFF_FFF0u)]
    public async Task HugeReadUnderAHugeMaximumIsRefused(uint length)
    {
        var device = new MemoryDevice(8L * 1024 * 1024 * 1024, maxPayload: uint.MaxValue);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, length, cookie: 1);
        RawReply reply;
        try
        {
            reply = await server.Client.ReadReplyAsync();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            await Task.WhenAny(server.Serving, Task.Delay(TimeSpan.FromSeconds(5)));
            Exception? fault = server.Serving.Exception?.InnerException;
            throw new Xunit.Sdk.XunitException($"The connection closed without a reply; ServeAsync threw {fault?.GetType().Name}: {fault?.Message}");
        }
        Assert.Equal(1ul, reply.Cookie);
        // The spec's answers to an oversized request: EOVERFLOW or EINVAL (ENOMEM would do too). Not EIO,
        // which would mean the device was asked to do something and failed.
        Assert.True(reply.Error is NbdError.Overflow or NbdError.Invalid or NbdError.NoMemory, $"the oversized READ got {reply.Error}");
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    /// <summary>
    /// A WRITE of 4 GiB - 1 under the same maximum may be drained, refused or cut off, but its payload must
    /// never be parsed as further requests, and ServeAsync must not fault.
    /// </summary>
    [Fact]
    public async Task HugeWritePayloadIsNeverParsedAsRequests()
    {
        var device = new MemoryDevice(8L * 1024 * 1024 * 1024, maxPayload: uint.MaxValue);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        // The first payload bytes look like a READ with cookie 0xBAD.
        byte[] smuggled = server.Client.EncodeRequest((ushort)NbdCommand.Read, 0, 16, cookie: 0xBAD);
        await server.Client.SendRequestAsync(NbdCommand.Write, 0, 0xFFFF_FFFF, cookie: 1, payload: smuggled);

        server.Client.Timeout = TimeSpan.FromSeconds(3);
        var cookies = new List<ulong>();
        try
        {
            while (true)
            {
                cookies.Add((await server.Client.ReadReplyAsync(cookie => cookie == 0xBAD ? 16 : 0)).Cookie);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or TimeoutException or InvalidDataException)
        {
        }
        Assert.False(cookies.Contains(0xBAD), "the WRITE's payload was parsed as a request: READ 0xBAD was answered");
        await server.Client.DisposeAsync();
        await server.StoppedAsync(); // rethrows what ServeAsync threw
        Assert.Equal(0, device.CommittedBytes);
    }
}
