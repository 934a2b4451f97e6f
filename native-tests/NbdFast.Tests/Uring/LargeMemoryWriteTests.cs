using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Uring;

/// <summary>
/// WRITE payloads for a memory export on io_uring: payloads that straddle the device's 64 KiB chunk edges and
/// arrive in pieces (part with the header, the rest through later receives) land exactly where addressed, and
/// payloads cut off mid-way are not applied (research/reliability.md §(b) 61), so the payload is staged in its
/// own buffer until it is whole.
/// </summary>
public sealed class LargeMemoryWriteTests
{
    private const long DeviceSize = 80L << 20;

    public static TheoryData<long, int, int> Writes => new()
    {
        // offset, length, pieces the payload is sent in
        { 65536 - 100, 200, 1 },
        { 1, 1 << 20, 1 },
        { 3 * 65536 + 7, 5 * 65536 + 13, 4 },
        { 7 * 65536, 65536, 3 },
        { 40L << 20, 1 << 20, 16 },
        { (45L << 20) - 3, (32 << 20) - 1, 8 },
    };

    [Theory]
    [MemberData(nameof(Writes))]
    public async Task PayloadLandsExactlyWhereItWasAddressed(long offset, int length, int pieces)
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        var device = new MemoryDevice(DeviceSize);
        await using (var host = new UringServerHost(engine, device))
        {
            await using MiniClient client = await MiniClient.ConnectAsync(host.EndPoint);
            byte[] payload = Pattern(length, seed: (int)(offset % 251) + 1);
            await SendWriteAsync(client, cookie: 7, offset, payload, pieces);
            await ExpectSuccessAsync(client, cookie: 7);

            // The bytes on either side are untouched (still zero), the range holds exactly the payload.
            byte[] window = new byte[length + 2];
            long start = Math.Max(0, offset - 1);
            int leading = (int)(offset - start);
            device.Read(start, window.AsSpan(0, Math.Min(window.Length, (int)(DeviceSize - start))));
            Assert.True(leading == 0 || window[0] == 0, "the byte before the write changed");
            Assert.True(payload.AsSpan().SequenceEqual(window.AsSpan(leading, length)), "the device holds other bytes than were written");
            Assert.Equal(0, window[leading + length]);

            // And a READ over the wire returns them.
            byte[] back = await ReadAsync(client, cookie: 8, offset, length);
            Assert.True(payload.AsSpan().SequenceEqual(back), "READ returned other bytes than were written");
        }
    }

    [Fact]
    public async Task PipelinedWritesToNeighbouringRangesAllLand()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        var device = new MemoryDevice(DeviceSize);
        await using var host = new UringServerHost(engine, device);
        await using MiniClient client = await MiniClient.ConnectAsync(host.EndPoint);
        // 48 writes of an odd size, back to back in one stream, each starting where the last ended.
        const int size = 200_003;
        var all = new MemoryStream();
        var expected = new byte[48 * size];
        for (int i = 0; i < 48; i++)
        {
            byte[] payload = Pattern(size, seed: i + 1);
            payload.CopyTo(expected, i * size);
            all.Write(Header(NbdCommand.Write, (ulong)i, 12345 + (long)i * size, size));
            all.Write(payload);
        }
        await client.Stream.WriteAsync(all.ToArray());
        for (int i = 0; i < 48; i++)
        {
            ulong cookie = await ReadSimpleReplyAsync(client);
            Assert.True(cookie < 48);
        }
        byte[] back = new byte[expected.Length];
        device.Read(12345, back);
        Assert.True(expected.AsSpan().SequenceEqual(back), "pipelined writes did not all land in place");
    }

    [Fact]
    public async Task PayloadCutShortIsNotAppliedAndClosesOnlyThatConnection()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        var device = new MemoryDevice(DeviceSize);
        await using var host = new UringServerHost(engine, device);
        await using MiniClient survivor = await MiniClient.ConnectAsync(host.EndPoint);
        byte[] before = Pattern(1 << 20, seed: 42);
        await SendWriteAsync(survivor, cookie: 3, 1L << 20, before, pieces: 1);
        await ExpectSuccessAsync(survivor, cookie: 3);
        for (int round = 0; round < 20; round++)
        {
            MiniClient dropped = await MiniClient.ConnectAsync(host.EndPoint);
            byte[] part = Pattern(300_000 + round * 1000, seed: round + 1);
            await dropped.Stream.WriteAsync(Header(NbdCommand.Write, 1, 1L << 20, 1 << 20));
            await dropped.Stream.WriteAsync(part);
            await Task.Delay(round % 3);
            dropped.Stream.Socket.Close(0);
        }
        // None of the cut-short payloads was applied.
        byte[] stored = await ReadAsync(survivor, cookie: 4, 1L << 20, before.Length);
        Assert.True(before.AsSpan().SequenceEqual(stored), "a write whose payload was cut short was applied");

        // The other client still writes and reads on the same chunks.
        byte[] payload = Pattern(1 << 20, seed: 99);
        await SendWriteAsync(survivor, cookie: 1, 1L << 20, payload, pieces: 2);
        await ExpectSuccessAsync(survivor, cookie: 1);
        byte[] back = await ReadAsync(survivor, cookie: 2, 1L << 20, payload.Length);
        Assert.True(payload.AsSpan().SequenceEqual(back), "the surviving client read other bytes than it wrote");
    }

    private static byte[] Pattern(long length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Header(NbdCommand command, ulong cookie, long offset, int length)
    {
        var header = new byte[NbdLimits.RequestHeaderSize];
        RequestHeaderCodec.Write(header, new NbdRequest(NbdCommandFlags.None, command, cookie, (ulong)offset, (ulong)length), extended: false);
        return header;
    }

    private static async Task SendWriteAsync(MiniClient client, ulong cookie, long offset, byte[] payload, int pieces)
    {
        // The header travels with the first piece, so the server finds part of the payload in its receive buffer.
        int piece = (payload.Length + pieces - 1) / pieces;
        byte[] first = [.. Header(NbdCommand.Write, cookie, offset, payload.Length), .. payload.AsSpan(0, Math.Min(piece, payload.Length))];
        await client.Stream.WriteAsync(first);
        for (int sent = piece; sent < payload.Length; sent += piece)
        {
            await Task.Delay(2);
            await client.Stream.WriteAsync(payload.AsMemory(sent, Math.Min(piece, payload.Length - sent)));
        }
    }

    private static async Task ExpectSuccessAsync(MiniClient client, ulong cookie) =>
        Assert.Equal(cookie, await ReadSimpleReplyAsync(client));

    private static async Task<ulong> ReadSimpleReplyAsync(MiniClient client)
    {
        byte[] reply = new byte[NbdLimits.SimpleReplyHeaderSize];
        // A payload received into the wrong place leaves the server waiting for bytes that never come: fail, do not hang.
        await client.Stream.ReadExactlyAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(NbdMagic.SimpleReply, BinaryPrimitives.ReadUInt32BigEndian(reply));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4)));
        return BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8));
    }

    private static async Task<byte[]> ReadAsync(MiniClient client, ulong cookie, long offset, int length)
    {
        await client.Stream.WriteAsync(Header(NbdCommand.Read, cookie, offset, length));
        Assert.Equal(cookie, await ReadSimpleReplyAsync(client));
        byte[] data = new byte[length];
        await client.Stream.ReadExactlyAsync(data);
        return data;
    }
}
