using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NbdFast.Protocol;

namespace NbdFast.Tests.Support;

/// <summary>One option reply as it came off the wire: the 20-byte header and its payload.</summary>
internal sealed record RawOptionReply(OptionReplyHeader Header, byte[] Payload)
{
    public NbdOptionReplyType Type => Header.Type;

    /// <summary>ACK or an error: the last reply to an option.</summary>
    public bool IsFinal => Header.Type == NbdOptionReplyType.Ack || Header.IsError;

    /// <summary>The payload as UTF-8 (error messages).</summary>
    public string Text => Encoding.UTF8.GetString(Payload);

    /// <summary>The NBD_INFO type of an NBD_REP_INFO reply; null for other replies.</summary>
    public NbdInfoType? InfoType => Header.Type == NbdOptionReplyType.Info && Payload.Length >= 2
        ? (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(Payload)
        : null;
}

/// <summary>What NBD_OPT_GO (or INFO) said about an export.</summary>
internal sealed record RawExportInfo(ulong Size, NbdTransmissionFlags Flags, IReadOnlyList<RawOptionReply> Replies);

/// <summary>
/// A deliberately dumb NBD client for tests: it sends exactly the bytes it is told to (including malformed
/// ones) and hands back what the server answered, byte for byte. Every read is bounded by <see cref="Timeout"/>
/// so a server that hangs fails the test with <see cref="TimeoutException"/> instead of blocking it.
/// Handshake here; transmission in RawNbdClient.Transmission.cs.
/// </summary>
internal sealed partial class RawNbdClient : IAsyncDisposable
{
    /// <summary>How long any single read waits by default.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Largest reply payload the client accepts; anything longer is a server bug.</summary>
    private const int MaxPayload = 64 * 1024 * 1024;

    public RawNbdClient(Stream stream, Socket? socket = null)
    {
        Stream = stream;
        Socket = socket;
    }

    public Stream Stream { get; }

    /// <summary>The client socket when connected over TCP (for shutdown and buffer sizes).</summary>
    public Socket? Socket { get; }

    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    /// <summary>
    /// Connects a client to a fresh loopback listener and returns it with the server's accepted socket.
    /// <paramref name="bufferSize"/> shrinks the kernel send and receive buffers on both ends.
    /// </summary>
    public static async Task<(RawNbdClient Client, Socket Server)> ConnectLoopbackAsync(int? bufferSize = null)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (bufferSize is int size)
        {
            // Set before connect/accept so the TCP window is negotiated with them (accepted sockets inherit).
            listener.ReceiveBufferSize = listener.SendBufferSize = size;
            client.ReceiveBufferSize = client.SendBufferSize = size;
        }
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        Task<Socket> accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        Socket server = await accept.WaitAsync(DefaultTimeout);
        client.NoDelay = true;
        server.NoDelay = true;
        return (new RawNbdClient(new NetworkStream(client, ownsSocket: true), client), server);
    }

    // ---- Handshake ------------------------------------------------------------------------------------------

    /// <summary>Reads the 18-byte greeting.</summary>
    public Task<byte[]> ReadGreetingAsync() => ReadBytesAsync(NbdLimits.GreetingSize);

    public Task SendClientFlagsAsync(uint flags)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, flags);
        return WriteAsync(bytes);
    }

    /// <summary>Reads the greeting, checks it is fixed newstyle, and answers with <paramref name="flags"/>.</summary>
    public async Task StartAsync(NbdClientFlags flags = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes)
    {
        byte[] greeting = await ReadGreetingAsync();
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdMagic.NbdMagicValue ||
            BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)) != NbdMagic.IHaveOpt)
        {
            throw new InvalidDataException("Not a newstyle greeting: " + Convert.ToHexString(greeting));
        }
        await SendClientFlagsAsync((uint)flags);
    }

    /// <summary>Sends an option; <paramref name="declaredLength"/> lets the header lie about the payload size.</summary>
    public Task SendOptionAsync(uint option, ReadOnlyMemory<byte> payload = default, uint? declaredLength = null)
    {
        var message = new byte[NbdLimits.OptionHeaderSize + payload.Length];
        HandshakeCodec.WriteOptionHeader(message, option, declaredLength ?? (uint)payload.Length);
        payload.CopyTo(message.AsMemory(NbdLimits.OptionHeaderSize));
        return WriteAsync(message);
    }

    public Task SendOptionAsync(NbdOption option, ReadOnlyMemory<byte> payload = default) => SendOptionAsync((uint)option, payload);

    /// <summary>Reads one option reply (header and payload).</summary>
    public async Task<RawOptionReply> ReadOptionReplyAsync()
    {
        byte[] header = await ReadBytesAsync(NbdLimits.OptionReplyHeaderSize);
        OptionReplyHeader decoded = HandshakeCodec.ReadOptionReplyHeader(header);
        if (decoded.Magic != NbdMagic.OptionReply || decoded.Length > MaxPayload)
        {
            throw new InvalidDataException("Bad option reply header: " + Convert.ToHexString(header));
        }
        return new RawOptionReply(decoded, await ReadBytesAsync((int)decoded.Length));
    }

    /// <summary>Reads option replies up to and including the final one (ACK or an error).</summary>
    public async Task<IReadOnlyList<RawOptionReply>> ReadOptionRepliesAsync()
    {
        var replies = new List<RawOptionReply>();
        do
        {
            replies.Add(await ReadOptionReplyAsync());
        }
        while (!replies[^1].IsFinal);
        return replies;
    }

    /// <summary>Sends an option and reads all its replies.</summary>
    public async Task<IReadOnlyList<RawOptionReply>> OptionAsync(uint option, ReadOnlyMemory<byte> payload = default)
    {
        await SendOptionAsync(option, payload);
        return await ReadOptionRepliesAsync();
    }

    public Task<IReadOnlyList<RawOptionReply>> OptionAsync(NbdOption option, ReadOnlyMemory<byte> payload = default) =>
        OptionAsync((uint)option, payload);

    /// <summary>Sends NBD_OPT_GO (or INFO) and expects success; returns the NBD_INFO_EXPORT contents.</summary>
    public async Task<RawExportInfo> GoAsync(string name, NbdOption option = NbdOption.Go, params NbdInfoType[] requests)
    {
        IReadOnlyList<RawOptionReply> replies = await OptionAsync(option, InfoPayload(name, requests));
        if (replies[^1].Type != NbdOptionReplyType.Ack)
        {
            throw new InvalidDataException($"{option} failed with {replies[^1].Type}: {replies[^1].Text}");
        }
        RawOptionReply export = replies.First(r => r.InfoType == NbdInfoType.Export);
        return new RawExportInfo(BinaryPrimitives.ReadUInt64BigEndian(export.Payload.AsSpan(2)),
            (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(export.Payload.AsSpan(10)), replies);
    }

    /// <summary>Sends NBD_OPT_EXPORT_NAME and reads the reply: size, flags and (unless NO_ZEROES) 124 padding bytes.</summary>
    public async Task<(ulong Size, NbdTransmissionFlags Flags, byte[] Padding)> ExportNameAsync(string name, bool expectZeroes)
    {
        await SendOptionAsync(NbdOption.ExportName, Encoding.UTF8.GetBytes(name));
        byte[] reply = await ReadBytesAsync(NbdLimits.ExportNameReplySize);
        byte[] padding = expectZeroes ? await ReadBytesAsync(NbdLimits.ExportNameReplyPadding) : [];
        return (BinaryPrimitives.ReadUInt64BigEndian(reply), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8)), padding);
    }

    /// <summary>The payload of INFO/GO: name length, name, request count, requests.</summary>
    public static byte[] InfoPayload(string name, params NbdInfoType[] requests) =>
        InfoPayload(Encoding.UTF8.GetBytes(name), requests.Select(r => (ushort)r).ToArray());

    public static byte[] InfoPayload(byte[] name, params ushort[] requests)
    {
        var payload = new byte[4 + name.Length + 2 + requests.Length * 2];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)name.Length);
        name.CopyTo(payload, 4);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4 + name.Length), (ushort)requests.Length);
        for (int i = 0; i < requests.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(6 + name.Length + i * 2), requests[i]);
        }
        return payload;
    }

    /// <summary>The payload of LIST/SET_META_CONTEXT: export name, query count, queries.</summary>
    public static byte[] MetaContextPayload(string exportName, params string[] queries)
    {
        var stream = new MemoryStream();
        void WriteString(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
            stream.Write(length);
            stream.Write(bytes);
        }
        WriteString(exportName);
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        stream.Write(count);
        foreach (string query in queries)
        {
            WriteString(query);
        }
        return stream.ToArray();
    }

    // ---- Raw I/O --------------------------------------------------------------------------------------------

    /// <summary>Sends raw bytes (bounded by <see cref="Timeout"/>).</summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await Stream.WriteAsync(bytes, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"The server did not accept {bytes.Length} bytes within {Timeout}.");
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; EndOfStreamException if the server closed first.</summary>
    public async Task<byte[]> ReadBytesAsync(int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await Stream.ReadExactlyAsync(buffer, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"The server did not send {count} bytes within {Timeout}.");
        }
        return buffer;
    }

    /// <summary>
    /// Waits for the server to close the connection (a read returns 0 or fails with a reset). Returns the
    /// number of bytes that arrived before the close, or null when the connection is still open after
    /// <paramref name="timeout"/>.
    /// </summary>
    public async Task<long?> ReadUntilClosedAsync(TimeSpan? timeout = null)
    {
        var buffer = new byte[64 * 1024];
        long received = 0;
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        try
        {
            while (true)
            {
                int n = await Stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    return received;
                }
                received += n;
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return null;
        }
        catch (IOException)
        {
            return received;
        }
    }

    /// <summary>Asserts that the server closes the connection within the timeout without sending anything more.</summary>
    public async Task AssertClosedAsync(TimeSpan? timeout = null)
    {
        long? received = await ReadUntilClosedAsync(timeout);
        Assert.True(received.HasValue, "The server did not close the connection.");
        Assert.True(received == 0, $"The server sent {received} unexpected bytes before closing.");
    }

    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
