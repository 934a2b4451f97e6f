using System.Buffers.Binary;
using CsCheck;
using NbdFast.Fuzzing;
using NbdFast.Protocol;

namespace NbdFast.Tests.Fuzzing;

/// <summary>
/// An attacker's length field never buys memory: a whole session that claims a huge length (option length,
/// name length, meta-context count or query length, request length, payload length) allocates about what the
/// same session claiming 16 bytes does. The scripted sessions run synchronously, so the calling thread's
/// allocation counter sees every byte (each measurement asserts that).
/// </summary>
public sealed class AllocationProperties
{
    private const uint Small = 16;

    /// <summary>Slack for what differs legitimately: exception objects and their stack traces, error messages.</summary>
    private const long Slack = 96 * 1024;

    public enum Field
    {
        OptionLength,
        ExportNameLength,
        InfoNameLength,
        MetaContextCount,
        MetaQueryLength,
    }

    [Fact]
    public void HandshakeLengthFieldsDoNotScaleAllocation() =>
        Gen.Select(Gen.Enum<Field>(), Gen.UInt[0x1000_0000, 0xFFFF_FFFF]).Sample((field, huge) =>
        {
            var config = new HandshakeConfig(FuzzTls.None, WithResolver: true, WithOffer: true, SmallLimits: false);
            long small = Allocated(() => HandshakeSession.RunAsync(config, HandshakeScript(field, Small)));
            long large = Allocated(() => HandshakeSession.RunAsync(config, HandshakeScript(field, huge)));
            Assert.True(large <= small + Slack, $"{field} = 0x{huge:x}: {large} bytes allocated, against {small} for 16");
        }, iter: 60);

    public enum Request
    {
        CompactWrite,
        CompactRead,
        ExtendedWrite,
        ExtendedBlockStatusPayload,
    }

    [Fact]
    public void RequestLengthFieldsDoNotScaleAllocation() =>
        Gen.Select(Gen.Enum<Request>(), Gen.ULong[0x1000_0000, ulong.MaxValue]).Sample((kind, huge) =>
        {
            bool extended = kind is Request.ExtendedWrite or Request.ExtendedBlockStatusPayload;
            ulong claimed = extended ? huge : (uint)Math.Max(0x1000_0000, huge >> 32);
            var config = new TransmissionConfig(extended ? FuzzReplies.Extended : FuzzReplies.Structured, ReadOnly: false, AllocationContext: true, SmallPayload: false);
            long small = Allocated(() => TransmissionSession.RunAsync(config, RequestScript(kind, Small)));
            long large = Allocated(() => TransmissionSession.RunAsync(config, RequestScript(kind, claimed)));
            Assert.True(large <= small + Slack, $"{kind} = 0x{claimed:x}: {large} bytes allocated, against {small} for 16");
        }, iter: 60);

    private static long Allocated<T>(Func<Task<T>> session)
    {
        session().GetAwaiter().GetResult(); // first use: JIT, statics, pools
        long before = GC.GetAllocatedBytesForCurrentThread();
        Task<T> run = session();
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.True(run.IsCompletedSuccessfully, "the session did not run synchronously, so the count would miss allocations");
        return after - before;
    }

    /// <summary>A session that claims <paramref name="length"/> in <paramref name="field"/> and sends 16 bytes where the claim applies.</summary>
    private static byte[] HandshakeScript(Field field, uint length)
    {
        var flags = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes;
        byte[] sixteen = "0123456789abcdef"u8.ToArray();
        var config = new HandshakeConfig(FuzzTls.None, true, true, false);
        byte[] session = field switch
        {
            Field.OptionLength => Seeds.Handshake(config, flags, (NbdOption.Info, sixteen)),
            Field.ExportNameLength => Seeds.Handshake(config, flags, (NbdOption.ExportName, sixteen)),
            Field.InfoNameLength => Seeds.Handshake(config, flags, (NbdOption.Info, TransmissionSession.InfoData("0123456789abcdef"))),
            Field.MetaContextCount or Field.MetaQueryLength => Seeds.Handshake(config, flags, (NbdOption.StructuredReply, []),
                (NbdOption.SetMetaContext, TransmissionSession.MetaContextData("a", "0123456789abcdef"))),
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        Span<byte> client = session.AsSpan(1);
        int lastOption = field is Field.MetaContextCount or Field.MetaQueryLength ? 4 + 16 : 4;
        switch (field)
        {
            case Field.OptionLength or Field.ExportNameLength:
                BinaryPrimitives.WriteUInt32BigEndian(client[(lastOption + 12)..], length); // the option header's length; 16 bytes follow
                break;
            case Field.InfoNameLength:
                BinaryPrimitives.WriteUInt32BigEndian(client[(lastOption + 16)..], length);
                break;
            case Field.MetaContextCount:
                BinaryPrimitives.WriteUInt32BigEndian(client[(lastOption + 16 + 5)..], length);
                break;
            case Field.MetaQueryLength:
                BinaryPrimitives.WriteUInt32BigEndian(client[(lastOption + 16 + 9)..], length);
                break;
        }
        return client.ToArray();
    }

    /// <summary>One request claiming <paramref name="length"/>, followed by 16 bytes (a payload where one is claimed) and end of stream.</summary>
    private static byte[] RequestScript(Request kind, ulong length)
    {
        bool extended = kind is Request.ExtendedWrite or Request.ExtendedBlockStatusPayload;
        var request = kind switch
        {
            Request.CompactWrite => new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, 1, 0, length),
            Request.CompactRead => new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, 1, 0, length),
            Request.ExtendedWrite => new NbdRequest(NbdCommandFlags.PayloadLen, NbdCommand.Write, 1, 0, length),
            _ => new NbdRequest(NbdCommandFlags.PayloadLen, NbdCommand.BlockStatus, 1, 0, length),
        };
        byte[] header = new byte[NbdLimits.ExtendedRequestHeaderSize];
        int size = RequestHeaderCodec.Write(header, request, extended);
        return [.. header.AsSpan(0, size), .. "0123456789abcdef"u8];
    }
}
