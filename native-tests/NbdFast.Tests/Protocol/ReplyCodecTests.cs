using NbdFast.Protocol;
using static NbdFast.Tests.Protocol.WireBytes;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// Byte-vector tests for the three reply header styles ("Simple reply message", "Structured reply chunk
/// message", "Extended reply chunk message") and for <see cref="ReplyCodec.TryRead"/>.
/// </summary>
public class ReplyCodecTests
{
    private const string Cookie = "0102030405060708";

    private static readonly byte[] SimpleIo = Hex("67446698 00000005" + Cookie);
    private static readonly byte[] StructuredData = Hex("668E33EF 0001 0001" + Cookie + "00001008");
    private static readonly byte[] ExtendedStatus = Hex("6E8A278C 0001 0006" + Cookie + "1122334455667788 0000000000000018");

    // ---- Simple -------------------------------------------------------------------------------------------------

    [Fact]
    public void SimpleReplyWithError()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteSimple(buffer, NbdError.IO, 0x0102030405060708UL);
        AssertWritten(SimpleIo, buffer, n);
    }

    [Fact]
    public void SimpleReplySuccess()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteSimple(buffer, NbdError.None, 0xFFEEDDCCBBAA9988UL);
        AssertWritten(Hex("67446698 00000000 FFEEDDCCBBAA9988"), buffer, n);
    }

    [Fact]
    public void SimpleReplyShutdown()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteSimple(buffer, NbdError.Shutdown, 1);
        AssertWritten(Hex("67446698 0000006C 0000000000000001"), buffer, n);
    }

    // ---- Structured ---------------------------------------------------------------------------------------------

    [Fact]
    public void StructuredChunkHeader()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteStructured(buffer, NbdReplyFlags.Done, NbdReplyType.OffsetData, 0x0102030405060708UL, 0x1008);
        AssertWritten(StructuredData, buffer, n);
    }

    [Fact]
    public void StructuredNoneChunk()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteStructured(buffer, NbdReplyFlags.Done, NbdReplyType.None, 0x0102030405060708UL, 0);
        AssertWritten(Hex("668E33EF 0001 0000" + Cookie + "00000000"), buffer, n);
    }

    [Theory]
    [InlineData(NbdReplyType.Error, "8001")]
    [InlineData(NbdReplyType.ErrorOffset, "8002")]
    [InlineData(NbdReplyType.OffsetHole, "0002")]
    [InlineData(NbdReplyType.BlockStatus, "0005")]
    public void StructuredChunkTypeField(NbdReplyType type, string wireType)
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteStructured(buffer, NbdReplyFlags.None, type, 0x0102030405060708UL, 0xA1B2C3D4);
        AssertWritten(Hex("668E33EF 0000" + wireType + Cookie + "A1B2C3D4"), buffer, n);
    }

    // ---- Extended -----------------------------------------------------------------------------------------------

    [Fact]
    public void ExtendedChunkHeader()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteExtended(buffer, NbdReplyFlags.Done, NbdReplyType.BlockStatusExt, 0x0102030405060708UL, 0x1122334455667788UL, 0x18);
        AssertWritten(ExtendedStatus, buffer, n);
    }

    [Fact]
    public void ExtendedChunkHeaderWithSixtyFourBitLengthAndErrorType()
    {
        var buffer = NewBuffer();
        int n = ReplyCodec.WriteExtended(buffer, NbdReplyFlags.None, NbdReplyType.ErrorOffset, 9, 0xFEDCBA9876543210UL, 0x0000000100000002UL);
        AssertWritten(Hex("6E8A278C 0000 8002 0000000000000009 FEDCBA9876543210 0000000100000002"), buffer, n);
    }

    // ---- TryRead ------------------------------------------------------------------------------------------------

    [Fact]
    public void TryReadSimple()
    {
        Assert.Equal(16, ReplyCodec.TryRead(SimpleIo, out NbdReplyHeader header));
        Assert.Equal(new NbdReplyHeader(0x67446698u, NbdReplyFlags.None, NbdReplyType.None, NbdError.IO, 0x0102030405060708UL, 0, 0), header);
    }

    [Fact]
    public void TryReadStructured()
    {
        Assert.Equal(20, ReplyCodec.TryRead(StructuredData, out NbdReplyHeader header));
        Assert.Equal(new NbdReplyHeader(0x668E33EFu, NbdReplyFlags.Done, NbdReplyType.OffsetData, NbdError.None, 0x0102030405060708UL, 0, 0x1008), header);
    }

    [Fact]
    public void TryReadStructuredErrorChunk()
    {
        Assert.Equal(20, ReplyCodec.TryRead(Hex("668E33EF 0000 8001" + Cookie + "0000000E"), out NbdReplyHeader header));
        Assert.Equal(NbdReplyFlags.None, header.Flags);
        Assert.Equal(NbdReplyType.Error, header.Type);
        Assert.Equal(14UL, header.Length);
    }

    [Fact]
    public void TryReadExtended()
    {
        Assert.Equal(32, ReplyCodec.TryRead(ExtendedStatus, out NbdReplyHeader header));
        Assert.Equal(new NbdReplyHeader(0x6E8A278Cu, NbdReplyFlags.Done, NbdReplyType.BlockStatusExt, NbdError.None,
            0x0102030405060708UL, 0x1122334455667788UL, 0x18), header);
    }

    [Fact]
    public void TryReadExtendedKeepsSixtyFourBitLength()
    {
        Assert.Equal(32, ReplyCodec.TryRead(Hex("6E8A278C 0000 0001" + Cookie + "0000000000000000 8000000000000001"), out NbdReplyHeader header));
        Assert.Equal(0x8000000000000001UL, header.Length);
    }

    [Fact]
    public void TryReadConsumesOnlyTheHeaderWhenMoreBytesFollow()
    {
        byte[] twoReplies = Concat(SimpleIo, StructuredData);
        Assert.Equal(16, ReplyCodec.TryRead(twoReplies, out NbdReplyHeader first));
        Assert.Equal(NbdError.IO, first.Error);
        Assert.Equal(20, ReplyCodec.TryRead(twoReplies.AsSpan(16), out NbdReplyHeader second));
        Assert.Equal(NbdReplyType.OffsetData, second.Type);
    }

    public static TheoryData<string, int> ShortInputs => new()
    {
        { "empty", 0 },
        { "magic", 1 },
        { "magic", 3 },
        { "simple", 4 },
        { "simple", 15 },
        { "structured", 4 },
        { "structured", 16 },
        { "structured", 19 },
        { "extended", 4 },
        { "extended", 20 },
        { "extended", 31 },
    };

    [Theory]
    [MemberData(nameof(ShortInputs))]
    public void TryReadShortInputNeedsMoreBytes(string style, int available)
    {
        byte[] full = style switch
        {
            "simple" or "magic" or "empty" => SimpleIo,
            "structured" => StructuredData,
            _ => ExtendedStatus,
        };
        Assert.Equal(0, ReplyCodec.TryRead(full.AsSpan(0, available), out NbdReplyHeader header));
        Assert.Equal(default, header);
    }

    [Theory]
    [InlineData("00000000")]
    [InlineData("25609513")] // a request magic
    [InlineData("21E41C71")] // an extended request magic
    [InlineData("96744668")] // historic NBD_REPLY_MAGIC
    [InlineData("98664467")] // simple reply magic byte-reversed
    [InlineData("668E33EE")] // structured reply magic off by one
    public void TryReadUnknownMagicIsMinusOne(string magic)
    {
        byte[] bytes = Hex(magic + "0000 0000" + Cookie + "0000000000000000 0000000000000000");
        Assert.Equal(-1, ReplyCodec.TryRead(bytes, out NbdReplyHeader header));
        Assert.Equal(default, header);
        Assert.Equal(-1, ReplyCodec.TryRead(bytes.AsSpan(0, 4), out _));
    }
}
