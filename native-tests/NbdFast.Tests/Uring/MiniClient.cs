using System.Buffers.Binary;
using System.Net.Sockets;
using NbdFast.Protocol;

namespace NbdFast.Tests.Uring;

/// <summary>
/// Just enough of an NBD client to drive a server at a steady pace: fixed-newstyle GO on the default
/// export (or a named one), then batches of pipelined compact requests with simple replies.
/// </summary>
internal sealed class MiniClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[1 << 20];

    private MiniClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>The connection after GO, for tests that frame their own requests.</summary>
    public NetworkStream Stream => _stream;

    public static async Task<MiniClient> ConnectAsync(System.Net.EndPoint endPoint, string exportName = "")
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        var client = new MiniClient(socket);
        await client.GoAsync(exportName);
        return client;
    }

    private async Task GoAsync(string exportName)
    {
        await _stream.ReadExactlyAsync(_buffer.AsMemory(0, NbdLimits.GreetingSize));
        int length = HandshakeCodec.WriteClientFlags(_buffer, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        int name = System.Text.Encoding.UTF8.GetBytes(exportName, _buffer.AsSpan(length + NbdLimits.OptionHeaderSize + 4));
        length += HandshakeCodec.WriteOptionHeader(_buffer.AsSpan(length), (uint)NbdOption.Go, (uint)(4 + name + 2));
        BinaryPrimitives.WriteUInt32BigEndian(_buffer.AsSpan(length), (uint)name);
        length += 4 + name;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(length), 0); // no info requests
        await _stream.WriteAsync(_buffer.AsMemory(0, length + 2));
        while (true)
        {
            await _stream.ReadExactlyAsync(_buffer.AsMemory(0, NbdLimits.OptionReplyHeaderSize));
            OptionReplyHeader reply = HandshakeCodec.ReadOptionReplyHeader(_buffer);
            Assert.False(reply.IsError, $"GO failed: {reply.Type}");
            await _stream.ReadExactlyAsync(_buffer.AsMemory(0, (int)reply.Length));
            if (reply.Type == NbdOptionReplyType.Ack)
            {
                return;
            }
        }
    }

    /// <summary>Sends <paramref name="count"/> requests of <paramref name="size"/> bytes (alternating write and read) and checks every reply.</summary>
    public async Task RunBatchAsync(int count, int size, long span)
    {
        var random = new Random(count ^ size);
        int position = 0;
        for (int i = 0; i < count; i++)
        {
            bool write = i % 2 == 0;
            long offset = random.NextInt64(span / size) * size;
            var request = new NbdRequest(NbdCommandFlags.None, write ? NbdCommand.Write : NbdCommand.Read, (ulong)i, (ulong)offset, (ulong)size);
            position += RequestHeaderCodec.Write(_buffer.AsSpan(position), request, extended: false);
            if (write)
            {
                _buffer.AsSpan(position, size).Fill((byte)i);
                position += size;
            }
        }
        await _stream.WriteAsync(_buffer.AsMemory(0, position));
        for (int i = 0; i < count; i++)
        {
            await _stream.ReadExactlyAsync(_buffer.AsMemory(0, NbdLimits.SimpleReplyHeaderSize));
            Assert.Equal(NbdMagic.SimpleReply, BinaryPrimitives.ReadUInt32BigEndian(_buffer));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(_buffer.AsSpan(4)));
            ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(8));
            if (cookie % 2 == 1)
            {
                await _stream.ReadExactlyAsync(_buffer.AsMemory(0, size));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        var disconnect = new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0);
        int length = RequestHeaderCodec.Write(_buffer, disconnect, extended: false);
        try
        {
            await _stream.WriteAsync(_buffer.AsMemory(0, length));
        }
        catch (IOException)
        {
        }
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
