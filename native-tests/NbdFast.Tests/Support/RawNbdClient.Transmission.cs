using System.Buffers.Binary;
using System.Text;
using NbdFast.Protocol;

namespace NbdFast.Tests.Support;

/// <summary>One transmission reply or chunk: the decoded header (simple, structured or extended) and its payload.</summary>
internal sealed record RawReply(NbdReplyHeader Header, byte[] Payload)
{
    public bool IsSimple => Header.Magic == NbdMagic.SimpleReply;
    public bool IsStructured => Header.Magic == NbdMagic.StructuredReply;
    public bool IsExtended => Header.Magic == NbdMagic.ExtendedReply;
    public ulong Cookie => Header.Cookie;

    /// <summary>The last message of its reply (always true for a simple reply).</summary>
    public bool IsDone => IsSimple || (Header.Flags & NbdReplyFlags.Done) != 0;

    /// <summary>The error this reply reports: the simple reply's field, or an error chunk's first 32 bits.</summary>
    public NbdError Error =>
        IsSimple ? Header.Error
        : ((ushort)Header.Type & (ushort)NbdReplyType.ErrorBit) != 0 ? (NbdError)BinaryPrimitives.ReadUInt32BigEndian(Payload)
        : NbdError.None;

    /// <summary>The message of an error chunk.</summary>
    public string ErrorMessage => IsSimple || Error == NbdError.None
        ? string.Empty
        : Encoding.UTF8.GetString(Payload, 6, BinaryPrimitives.ReadUInt16BigEndian(Payload.AsSpan(4)));
}

internal sealed partial class RawNbdClient
{
    /// <summary>Send 32-byte extended request headers (after NBD_OPT_EXTENDED_HEADERS was acknowledged).</summary>
    public bool ExtendedHeaders { get; set; }

    /// <summary>Encodes a request header in the current style, followed by <paramref name="payload"/>.</summary>
    public byte[] EncodeRequest(ushort command, ulong offset, ulong length, ulong cookie = 0, NbdCommandFlags flags = NbdCommandFlags.None, ReadOnlySpan<byte> payload = default)
    {
        int headerSize = RequestHeaderCodec.HeaderSize(ExtendedHeaders);
        var message = new byte[headerSize + payload.Length];
        RequestHeaderCodec.Write(message, new NbdRequest(flags, (NbdCommand)command, cookie, offset, length), ExtendedHeaders);
        payload.CopyTo(message.AsSpan(headerSize));
        return message;
    }

    /// <summary>Sends any request: raw command number, flags and length, and an optional payload (sent as is).</summary>
    public Task SendRequestAsync(ushort command, ulong offset, ulong length, ulong cookie = 0, NbdCommandFlags flags = NbdCommandFlags.None, ReadOnlyMemory<byte> payload = default) =>
        WriteAsync(EncodeRequest(command, offset, length, cookie, flags, payload.Span));

    public Task SendRequestAsync(NbdCommand command, ulong offset, ulong length, ulong cookie = 0, NbdCommandFlags flags = NbdCommandFlags.None, ReadOnlyMemory<byte> payload = default) =>
        SendRequestAsync((ushort)command, offset, length, cookie, flags, payload);

    /// <summary>A well-formed WRITE: adds PAYLOAD_LEN when extended headers are in use.</summary>
    public Task SendWriteAsync(ulong offset, byte[] data, ulong cookie = 0, NbdCommandFlags flags = NbdCommandFlags.None) =>
        SendRequestAsync(NbdCommand.Write, offset, (ulong)data.Length, cookie,
            ExtendedHeaders ? flags | NbdCommandFlags.PayloadLen : flags, data);

    public Task SendDisconnectAsync() => SendRequestAsync(NbdCommand.Disconnect, 0, 0, cookie: 0xD15C);

    /// <summary>
    /// Reads one reply or chunk. A simple reply carries no length, so <paramref name="simpleDataLength"/> says
    /// how many data bytes follow a successful simple reply (the READ length; 0 for other commands).
    /// </summary>
    public Task<RawReply> ReadReplyAsync(int simpleDataLength = 0) => ReadReplyAsync(_ => simpleDataLength);

    /// <summary>Reads one reply or chunk; for a successful simple reply, asks how much data goes with its cookie.</summary>
    public async Task<RawReply> ReadReplyAsync(Func<ulong, int> simpleDataLength)
    {
        byte[] magic = await ReadBytesAsync(4);
        int headerSize = BinaryPrimitives.ReadUInt32BigEndian(magic) switch
        {
            NbdMagic.SimpleReply => NbdLimits.SimpleReplyHeaderSize,
            NbdMagic.StructuredReply => NbdLimits.StructuredReplyHeaderSize,
            NbdMagic.ExtendedReply => NbdLimits.ExtendedReplyHeaderSize,
            _ => throw new InvalidDataException("Unknown reply magic " + Convert.ToHexString(magic)),
        };
        var header = new byte[headerSize];
        magic.CopyTo(header, 0);
        (await ReadBytesAsync(headerSize - 4)).CopyTo(header, 4);
        if (ReplyCodec.TryRead(header, out NbdReplyHeader decoded) != headerSize)
        {
            throw new InvalidDataException("Undecodable reply header " + Convert.ToHexString(header));
        }
        ulong length = decoded.Magic == NbdMagic.SimpleReply
            ? decoded.Error == NbdError.None ? (ulong)simpleDataLength(decoded.Cookie) : 0
            : decoded.Length;
        if (length > MaxPayload)
        {
            throw new InvalidDataException($"Reply payload of {length} bytes is implausible.");
        }
        return new RawReply(decoded, await ReadBytesAsync((int)length));
    }

    /// <summary>Reads chunks until one carries NBD_REPLY_FLAG_DONE (a simple reply ends at once).</summary>
    public Task<IReadOnlyList<RawReply>> ReadFullReplyAsync(int simpleDataLength = 0) => ReadFullReplyAsync(_ => simpleDataLength);

    /// <summary>Reads chunks until DONE; for a successful simple reply, asks how much data goes with its cookie.</summary>
    public async Task<IReadOnlyList<RawReply>> ReadFullReplyAsync(Func<ulong, int> simpleDataLength)
    {
        var chunks = new List<RawReply>();
        do
        {
            chunks.Add(await ReadReplyAsync(simpleDataLength));
        }
        while (!chunks[^1].IsDone);
        return chunks;
    }

    /// <summary>Shuts down the sending side: the server reads end of stream after what was sent.</summary>
    public void ShutdownSend() =>
        (Socket ?? throw new InvalidOperationException("Not a socket client.")).Shutdown(System.Net.Sockets.SocketShutdown.Send);
}
