using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>
/// The in-flight budget must be returned by every request, whatever path produced its reply, or pipelining
/// quietly degrades to one request at a time.
/// </summary>
public class InFlightBudgetTests
{
    private const int Chunk = 64 * 1024;
    private const long GatedOffset = 8 * Chunk;

    [Theory]
    [InlineData(0)]   // control: nothing before, the second read overtakes the stuck one
    [InlineData(20)]  // after sparse reads whose reply outgrew the read buffer
    public async Task ReadIsNotHeldBackBehindAStuckReadAfterSparseReads(int sparseReadsBefore)
    {
        var device = new GatedDevice(16 * Chunk, BlockDeviceCapabilities.Flush | BlockDeviceCapabilities.BlockStatus, gatedOffset: GatedOffset);
        device.Inner.Write(Chunk, SimpleReplyTests.Pattern(2 * Chunk, 3)); // data in chunks 1 and 2; chunk 0 is a hole
        var options = new ServeOptions { MaxInFlightBytes = 1024 * 1024 };
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured, options: options);

        // A read of 128 KiB - 40 bytes starting one byte before the data: a 1-byte hole then data. Its rented
        // buffer (Headroom + length = exactly 128 KiB) is too small for the two-chunk reply, so the server
        // rents a larger one while the request is in flight.
        const ulong offset = Chunk - 1;
        const int length = 2 * Chunk - 40;
        var expected = new byte[length];
        device.Inner.Read((long)offset, expected);
        for (int i = 0; i < sparseReadsBefore; i++)
        {
            await server.Client.SendRequestAsync(NbdCommand.Read, offset, length, cookie: (ulong)i);
            (byte[] data, int holes) = SparseReadTests.Reassemble(await server.Client.ReadFullReplyAsync(), (ulong)i, offset, length);
            Assert.Equal(expected, data);
            Assert.Equal(1, holes);
        }

        // A read that blocks in the device, then a small one: with budget to spare the second is answered first.
        await server.Client.SendRequestAsync(NbdCommand.Read, (ulong)GatedOffset, 4096, cookie: 0xA);
        await device.WaitForReadsAsync(1, TransmissionServer.Timeout);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 4096, cookie: 0xB);
        server.Client.Timeout = TimeSpan.FromSeconds(5);
        RawReply first;
        try
        {
            first = await server.Client.ReadReplyAsync();
        }
        catch (TimeoutException)
        {
            device.Open();
            throw new Xunit.Sdk.XunitException(
                $"READ 0xB was held back behind the stuck READ 0xA: the in-flight byte budget (1 MiB) leaked after {sparseReadsBefore} sparse reads.");
        }
        Assert.Equal(0xBul, first.Cookie);
        device.Open();
        Assert.Equal(0xAul, (await server.Client.ReadReplyAsync()).Cookie);
        await server.DisconnectAsync();
    }
}
