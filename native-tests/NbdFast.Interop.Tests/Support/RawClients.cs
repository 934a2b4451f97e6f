using System.Net;
using System.Net.Sockets;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.Support;

/// <summary>
/// The raw test client (linked from NbdFast.Tests) pointed at a running nbdfast, and the assertions bad-input
/// tests make with it: the exact option reply or transmission error the spec asks for, or a clean close.
/// </summary>
internal static class RawClients
{
    /// <summary>Opens a raw connection to <paramref name="server"/> (TCP or its unix socket); nothing is read yet.</summary>
    public static async Task<RawNbdClient> ConnectAsync(NbdfastProcess server)
    {
        Socket socket = server.SocketPath is string path
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            EndPoint endPoint = server.SocketPath is string unix
                ? new UnixDomainSocketEndPoint(unix)
                : new IPEndPoint(IPAddress.Loopback, server.Port!.Value);
            await socket.ConnectAsync(endPoint).WaitAsync(RawNbdClient.DefaultTimeout).ConfigureAwait(false);
            return new RawNbdClient(new NetworkStream(socket, ownsSocket: true), socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects, does the fixed-newstyle handshake (optionally structured replies) and GO on the default export.</summary>
    public static async Task<(RawNbdClient Client, RawExportInfo Export)> NegotiateAsync(NbdfastProcess server, bool structured = false)
    {
        RawNbdClient client = await ConnectAsync(server).ConfigureAwait(false);
        try
        {
            await client.StartAsync().ConfigureAwait(false);
            if (structured)
            {
                AssertAck(await client.OptionAsync(NbdOption.StructuredReply).ConfigureAwait(false), NbdOption.StructuredReply);
            }
            RawExportInfo export = await client.GoAsync("").ConfigureAwait(false);
            return (client, export);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

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
    public static async Task AssertErrorReplyAsync(this RawNbdClient client, ulong cookie, NbdError expected)
    {
        IReadOnlyList<RawReply> chunks = await client.ReadFullReplyAsync().ConfigureAwait(false);
        RawReply last = chunks[^1];
        Assert.Equal((cookie, expected), (last.Cookie, chunks.Select(c => c.Error).FirstOrDefault(e => e != NbdError.None)));
        Assert.All(chunks, c => Assert.Equal(cookie, c.Cookie));
    }

    /// <summary>Reads one complete reply and asserts success (no data) for <paramref name="cookie"/>.</summary>
    public static async Task AssertSuccessReplyAsync(this RawNbdClient client, ulong cookie)
    {
        IReadOnlyList<RawReply> chunks = await client.ReadFullReplyAsync().ConfigureAwait(false);
        Assert.All(chunks, c => Assert.Equal((cookie, NbdError.None), (c.Cookie, c.Error)));
    }

    /// <summary>Reads the complete reply to READ(<paramref name="offset"/>, <paramref name="length"/>), asserts success, returns the data.</summary>
    public static async Task<byte[]> AssertReadReplyAsync(this RawNbdClient client, ulong cookie, ulong offset, int length)
    {
        IReadOnlyList<RawReply> chunks = await client.ReadFullReplyAsync(length).ConfigureAwait(false);
        Assert.All(chunks, c => Assert.Equal((cookie, NbdError.None), (c.Cookie, c.Error)));
        if (chunks[0].IsSimple)
        {
            return chunks[0].Payload;
        }
        // Structured: OFFSET_DATA chunks start with their 8-byte offset; holes (and a zero-length read) are zeroes.
        var data = new byte[length];
        foreach (RawReply chunk in chunks.Where(c => c.Header.Type == NbdReplyType.OffsetData))
        {
            ulong at = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload);
            chunk.Payload.AsSpan(8).CopyTo(data.AsSpan(checked((int)(at - offset))));
        }
        return data;
    }

    /// <summary>A small READ that must succeed: proof the stream is still in sync after what came before.</summary>
    public static async Task AssertInSyncAsync(this RawNbdClient client, ulong offset = 1 << 20)
    {
        const ulong cookie = 0x5151_5151;
        await client.SendRequestAsync(NbdCommand.Read, offset, 512, cookie).ConfigureAwait(false);
        await client.AssertReadReplyAsync(cookie, offset, 512).ConfigureAwait(false);
    }
}
