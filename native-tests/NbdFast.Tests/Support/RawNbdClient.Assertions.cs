using System.Buffers.Binary;
using NbdFast.Protocol;

namespace NbdFast.Tests.Support;

/// <summary>
/// What bad-input and fault tests assert with the raw client: the exact option reply or transmission error the
/// spec asks for (simple or structured), successful replies with their data, and a stream still in sync.
/// </summary>
internal sealed partial class RawNbdClient
{
    /// <summary>Asserts that an option got exactly one reply, ACK.</summary>
    public static void AssertAck(IReadOnlyList<RawOptionReply> replies, NbdOption option)
    {
        RawOptionReply reply = Assert.Single(replies);
        Assert.Equal(((uint)option, NbdOptionReplyType.Ack), (reply.Header.Option, reply.Type));
    }

    /// <summary>Asserts that an option got exactly one reply, the error <paramref name="expected"/>, and returns it.</summary>
    public static RawOptionReply AssertOptionError(IReadOnlyList<RawOptionReply> replies, uint option, NbdOptionReplyType expected)
    {
        RawOptionReply reply = Assert.Single(replies);
        Assert.Equal((option, expected), (reply.Header.Option, reply.Type));
        Assert.True(reply.Payload.Length < NbdLimits.MaxStringLength, $"error message of {reply.Payload.Length} bytes");
        return reply;
    }

    /// <summary>Reads one complete reply and asserts it is the error <paramref name="expected"/> for <paramref name="cookie"/>.</summary>
    public async Task AssertErrorReplyAsync(ulong cookie, NbdError expected)
    {
        IReadOnlyList<RawReply> chunks = await ReadFullReplyAsync().ConfigureAwait(false);
        RawReply last = chunks[^1];
        Assert.Equal((cookie, expected), (last.Cookie, chunks.Select(c => c.Error).FirstOrDefault(e => e != NbdError.None)));
        Assert.All(chunks, c => Assert.Equal(cookie, c.Cookie));
    }

    /// <summary>Reads one complete reply and asserts success (no data) for <paramref name="cookie"/>.</summary>
    public async Task AssertSuccessReplyAsync(ulong cookie)
    {
        IReadOnlyList<RawReply> chunks = await ReadFullReplyAsync().ConfigureAwait(false);
        Assert.All(chunks, c => Assert.Equal((cookie, NbdError.None), (c.Cookie, c.Error)));
    }

    /// <summary>Reads the complete reply to READ(<paramref name="offset"/>, <paramref name="length"/>), asserts success, returns the data.</summary>
    public async Task<byte[]> AssertReadReplyAsync(ulong cookie, ulong offset, int length)
    {
        IReadOnlyList<RawReply> chunks = await ReadFullReplyAsync(length).ConfigureAwait(false);
        Assert.All(chunks, c => Assert.Equal((cookie, NbdError.None), (c.Cookie, c.Error)));
        return DataOf(chunks, offset, length);
    }

    /// <summary>The data of a successful READ reply, simple or structured (OFFSET_DATA chunks placed by their offsets; holes are zeroes).</summary>
    public static byte[] DataOf(IReadOnlyList<RawReply> chunks, ulong offset, int length)
    {
        if (chunks[0].IsSimple)
        {
            return chunks[0].Payload;
        }
        var data = new byte[length];
        foreach (RawReply chunk in chunks.Where(c => c.Header.Type == NbdReplyType.OffsetData))
        {
            ulong at = BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload);
            chunk.Payload.AsSpan(8).CopyTo(data.AsSpan(checked((int)(at - offset))));
        }
        return data;
    }

    /// <summary>Sends READ(<paramref name="offset"/>, <paramref name="length"/>) and returns its data, asserting success.</summary>
    public async Task<byte[]> ReadDataAsync(ulong cookie, ulong offset, int length)
    {
        await SendRequestAsync(NbdCommand.Read, offset, (ulong)length, cookie).ConfigureAwait(false);
        return await AssertReadReplyAsync(cookie, offset, length).ConfigureAwait(false);
    }

    /// <summary>A small READ that must succeed: proof the stream is still in sync after what came before.</summary>
    public async Task AssertInSyncAsync(ulong offset = 1 << 20)
    {
        const ulong cookie = 0x5151_5151;
        await SendRequestAsync(NbdCommand.Read, offset, 512, cookie).ConfigureAwait(false);
        await AssertReadReplyAsync(cookie, offset, 512).ConfigureAwait(false);
    }
}
