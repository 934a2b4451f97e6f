using NbdFast.Protocol;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// The codecs sit on the hot path and are documented to allocate nothing. Each test warms the calls up once
/// (static constructors, first-call JIT), then runs them in a loop and checks the thread's allocation counter.
/// </summary>
public class CodecAllocationTests
{
    private const int Iterations = 1000;

    private static object? s_sink;

    [Fact]
    public void AllocationCounterDetectsAnAllocation()
    {
        // Guard: proves the measurement below can fail.
        long before = GC.GetAllocatedBytesForCurrentThread();
        s_sink = new byte[64];
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.NotNull(s_sink);
        Assert.True(after > before, $"allocating 64 bytes moved the counter by {after - before}");
    }

    [Fact]
    public void HandshakeEncodersDoNotAllocate()
    {
        var buffer = new byte[512];
        int total = HandshakeEncoders(buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Iterations; i++)
        {
            total += HandshakeEncoders(buffer);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal((Iterations + 1) * HandshakeBytesPerPass, total);
    }

    [Fact]
    public void TransmissionEncodersDoNotAllocate()
    {
        var buffer = new byte[512];
        int total = TransmissionEncoders(buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Iterations; i++)
        {
            total += TransmissionEncoders(buffer);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal((Iterations + 1) * TransmissionBytesPerPass, total);
    }

    [Fact]
    public void DecodersDoNotAllocate()
    {
        var buffer = new byte[64];
        ulong total = Decoders(buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Iterations; i++)
        {
            total += Decoders(buffer);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal((ulong)(Iterations + 1) * DecodedPerPass, total);
    }

    // Bytes written by one pass of HandshakeEncoders, message by message.
    private const int HandshakeBytesPerPass =
        18          // greeting
        + 4         // client flags
        + 16        // option request header
        + 20        // option reply header
        + 20        // ACK
        + 20 + 14   // error, "no such export"
        + 20 + 4 + 4 + 11 // SERVER, "disk", "description"
        + 20 + 12   // INFO_EXPORT
        + 20 + 2 + 9 // INFO_NAME, "disk" + é (2 bytes) + € (3 bytes)
        + 20 + 14   // INFO_BLOCK_SIZE
        + 20 + 4 + 15 // META_CONTEXT, "base:allocation"
        + 10        // EXPORT_NAME reply, NO_ZEROES
        + 134;      // EXPORT_NAME reply with padding

    private static int HandshakeEncoders(Span<byte> buffer)
    {
        int n = HandshakeCodec.WriteGreeting(buffer, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        n += HandshakeCodec.WriteClientFlags(buffer, NbdClientFlags.Known);
        n += HandshakeCodec.WriteOptionHeader(buffer, (uint)NbdOption.Go, 6);
        n += HandshakeCodec.WriteOptionReplyHeader(buffer, (uint)NbdOption.Go, NbdOptionReplyType.Info, 12);
        n += HandshakeCodec.WriteAck(buffer, (uint)NbdOption.Go);
        n += HandshakeCodec.WriteError(buffer, (uint)NbdOption.Go, NbdOptionReplyType.ErrUnknown, "no such export");
        n += HandshakeCodec.WriteServer(buffer, (uint)NbdOption.List, "disk", "description");
        n += HandshakeCodec.WriteInfoExport(buffer, (uint)NbdOption.Go, 1UL << 30, NbdTransmissionFlags.HasFlags);
        n += HandshakeCodec.WriteInfoText(buffer, (uint)NbdOption.Go, NbdInfoType.Name, "disk\u00e9\u20ac");
        n += HandshakeCodec.WriteInfoBlockSize(buffer, (uint)NbdOption.Go, 1, 4096, 33554432);
        n += HandshakeCodec.WriteMetaContext(buffer, (uint)NbdOption.SetMetaContext, 1, "base:allocation");
        n += HandshakeCodec.WriteExportNameReply(buffer, 1UL << 30, NbdTransmissionFlags.HasFlags, noZeroes: true);
        n += HandshakeCodec.WriteExportNameReply(buffer, 1UL << 30, NbdTransmissionFlags.HasFlags, noZeroes: false);
        return n;
    }

    // Bytes written by one pass of TransmissionEncoders, message by message.
    private const int TransmissionBytesPerPass =
        28 + 32     // compact and extended request headers
        + 16 + 20 + 32 // simple, structured and extended reply headers
        + 8 + 12    // OFFSET_DATA prefix, OFFSET_HOLE
        + 6 + 11    // ERROR, "read failed"
        + 6 + 3 + 8 // ERROR_OFFSET, "bad"
        + 6 + 0 + 8 // ERROR_OFFSET, "€" truncated to nothing by maxMessageBytes = 2
        + 8 + 16;   // 32- and 64-bit block descriptors

    private static int TransmissionEncoders(Span<byte> buffer)
    {
        var compact = new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 1, 2, 3);
        var extended = new NbdRequest(NbdCommandFlags.PayloadLen, NbdCommand.Write, 1, 2, 3);
        int n = RequestHeaderCodec.Write(buffer, compact, extended: false);
        n += RequestHeaderCodec.Write(buffer, extended, extended: true);
        n += ReplyCodec.WriteSimple(buffer, NbdError.IO, 1);
        n += ReplyCodec.WriteStructured(buffer, NbdReplyFlags.Done, NbdReplyType.OffsetData, 1, 4104);
        n += ReplyCodec.WriteExtended(buffer, NbdReplyFlags.Done, NbdReplyType.BlockStatusExt, 1, 2, 24);
        n += ReplyCodec.WriteOffsetDataPrefix(buffer, 4096);
        n += ReplyCodec.WriteOffsetHole(buffer, 4096, 512);
        n += ReplyCodec.WriteErrorPayload(buffer, NbdError.IO, "read failed");
        n += ReplyCodec.WriteErrorPayload(buffer, NbdError.Invalid, "bad", offset: 512);
        n += ReplyCodec.WriteErrorPayload(buffer, NbdError.Invalid, "\u20ac", offset: 512, maxMessageBytes: 2);
        n += ReplyCodec.WriteBlockDescriptor(buffer, 4096, 3);
        n += ReplyCodec.WriteExtendedBlockDescriptor(buffer, 4096, 3);
        return n;
    }

    // Each pass decodes a few fields and sums small numbers so the result can be checked.
    private const ulong DecodedPerPass =
        3           // client flags
        + 7 + 1     // option request: GO, length 1
        + 6 + 1     // option reply: INFO, ACK
        + 1         // request command: WRITE
        + 16 + 1    // simple reply: header size, EPERM
        + 32 + 16 + 2 + 1; // extended reply: header size, length, OFFSET_HOLE, DONE

    private static ulong Decoders(byte[] buffer)
    {
        HandshakeCodec.WriteClientFlags(buffer, NbdClientFlags.Known);
        ulong sum = (ulong)HandshakeCodec.ReadClientFlags(buffer);

        HandshakeCodec.WriteOptionHeader(buffer, (uint)NbdOption.Go, 1);
        OptionRequestHeader option = HandshakeCodec.ReadOptionHeader(buffer);
        sum += option.Option + option.Length;

        HandshakeCodec.WriteOptionReplyHeader(buffer, (uint)NbdOption.Info, NbdOptionReplyType.Ack, 0);
        OptionReplyHeader reply = HandshakeCodec.ReadOptionReplyHeader(buffer);
        sum += reply.Option + (uint)reply.Type;

        RequestHeaderCodec.Write(buffer, new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, 0, 0, 0), extended: false);
        sum += RequestHeaderCodec.TryRead(buffer, extended: false, out NbdRequest request) ? (ulong)request.Command : 1000;

        ReplyCodec.WriteSimple(buffer, NbdError.Perm, 0);
        int consumed = ReplyCodec.TryRead(buffer, out NbdReplyHeader simple);
        sum += (ulong)consumed + (uint)simple.Error;

        ReplyCodec.WriteExtended(buffer, NbdReplyFlags.Done, NbdReplyType.OffsetHole, 0, 0, 16);
        consumed = ReplyCodec.TryRead(buffer, out NbdReplyHeader chunk);
        sum += (ulong)consumed + chunk.Length + (ulong)chunk.Type + (ulong)chunk.Flags;
        return sum;
    }
}
