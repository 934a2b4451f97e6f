using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Structured READ replies made of several content chunks (OFFSET_DATA and OFFSET_HOLE).</summary>
public class SparseReadTests
{
    private const int Chunk = 64 * 1024;

    /// <summary>
    /// Checks the spec's rules for a multi-chunk READ reply (same cookie, DONE only on the last chunk, content
    /// chunks inside the request and not overlapping) and rebuilds the data it describes.
    /// </summary>
    internal static (byte[] Data, int Holes) Reassemble(IReadOnlyList<RawReply> chunks, ulong cookie, ulong offset, int length)
    {
        var data = new byte[length];
        var covered = new bool[length];
        int holes = 0;
        for (int i = 0; i < chunks.Count; i++)
        {
            RawReply chunk = chunks[i];
            Assert.Equal(cookie, chunk.Cookie);
            Assert.Equal(i == chunks.Count - 1, chunk.IsDone);
            Assert.Equal(NbdError.None, chunk.Error);
            if (chunk.IsExtended)
            {
                Assert.Equal(offset, chunk.Header.Offset);
            }
            if (chunk.Header.Type == NbdReplyType.None)
            {
                Assert.Empty(chunk.Payload);
                continue;
            }
            ulong start = BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload);
            int size;
            if (chunk.Header.Type == NbdReplyType.OffsetHole)
            {
                Assert.Equal(12, chunk.Payload.Length);
                size = (int)BinaryPrimitives.ReadUInt32BigEndian(chunk.Payload.AsSpan(8));
                Assert.NotEqual(0, size);
                holes++;
            }
            else
            {
                Assert.Equal(NbdReplyType.OffsetData, chunk.Header.Type);
                size = chunk.Payload.Length - 8;
                Assert.True(size > 0, "OFFSET_DATA without data");
            }
            Assert.True(start >= offset && start - offset + (ulong)size <= (ulong)length, $"chunk [{start}, +{size}) outside the request");
            int at = (int)(start - offset);
            for (int j = at; j < at + size; j++)
            {
                Assert.False(covered[j], $"byte {j} described twice");
                covered[j] = true;
            }
            if (chunk.Header.Type == NbdReplyType.OffsetData)
            {
                chunk.Payload.AsSpan(8).CopyTo(data.AsSpan(at));
            }
        }
        Assert.All(covered, Assert.True);
        return (data, holes);
    }

    [Theory]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task ReadAcrossDataAndHolesReassemblesToTheDeviceContents(ReplyStyle style)
    {
        var device = new MemoryDevice(16 * Chunk);
        device.Write(0, SimpleReplyTests.Pattern(Chunk, 1));
        device.Write(2 * Chunk + 100, SimpleReplyTests.Pattern(500, 2));
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);

        const ulong offset = 1000;
        const int length = 4 * Chunk;
        await server.Client.SendRequestAsync(NbdCommand.Read, offset, length, cookie: 77);
        IReadOnlyList<RawReply> chunks = await server.Client.ReadFullReplyAsync();
        (byte[] data, int holes) = Reassemble(chunks, 77, offset, length);

        var expected = new byte[length];
        device.Read((long)offset, expected);
        Assert.Equal(expected, data);
        Assert.True(holes > 0, "the unwritten 64 KiB chunks were sent as zero bytes instead of OFFSET_HOLE");
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ReadOfAWholeHoleIsAnswered()
    {
        var device = new MemoryDevice(16 * Chunk);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 16 * Chunk, cookie: 1);
        (byte[] data, _) = Reassemble(await server.Client.ReadFullReplyAsync(), 1, 0, 16 * Chunk);
        Assert.All(data, b => Assert.Equal(0, b));
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task DontFragmentReadOverHolesIsOneDataChunk()
    {
        var device = new MemoryDevice(16 * Chunk);
        device.Write(Chunk, [9]);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, ReplyStyle.Structured);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 4 * Chunk, cookie: 2, NbdCommandFlags.DontFragment);
        RawReply chunk = Assert.Single(await server.Client.ReadFullReplyAsync());
        Assert.Equal(NbdReplyType.OffsetData, chunk.Header.Type);
        Assert.Equal(9, chunk.Payload[8 + Chunk]);
        await server.DisconnectAsync();
    }
}
