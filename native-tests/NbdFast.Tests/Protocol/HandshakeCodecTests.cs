using NbdFast.Protocol;
using static NbdFast.Tests.Protocol.WireBytes;

namespace NbdFast.Tests.Protocol;

/// <summary>
/// Byte-vector tests for the fixed-newstyle handshake codec. Expected images are written by hand from the
/// spec's message layouts ("Newstyle negotiation", "Fixed newstyle negotiation", "Option types",
/// "Option reply types").
/// </summary>
public class HandshakeCodecTests
{
    // The 8-byte option reply magic 0x3e889045565a9 in network order.
    private const string ReplyMagic = "0003E889 045565A9";

    // ---- Greeting and client flags ----------------------------------------------------------------------------

    [Fact]
    public void GreetingIsNbdMagicIHaveOptAndHandshakeFlags()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteGreeting(buffer, NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes);
        AssertWritten(Concat(Ascii("NBDMAGIC"), Ascii("IHAVEOPT"), Hex("00 03")), buffer, n);
        AssertWritten(Hex("4E42444D41474943 49484156454F5054 0003"), buffer, n);
    }

    [Fact]
    public void GreetingWithOnlyFixedNewstyle()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteGreeting(buffer, NbdHandshakeFlags.FixedNewstyle);
        AssertWritten(Hex("4E42444D41474943 49484156454F5054 0001"), buffer, n);
    }

    [Fact]
    public void GreetingIntoExactlySizedBuffer()
    {
        var buffer = new byte[18];
        int n = HandshakeCodec.WriteGreeting(buffer, NbdHandshakeFlags.NoZeroes);
        Assert.Equal(18, n);
        Assert.Equal(Hex("4E42444D41474943 49484156454F5054 0002"), buffer);
    }

    [Fact]
    public void GreetingIntoTooSmallBufferThrows() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => HandshakeCodec.WriteGreeting(new byte[17], NbdHandshakeFlags.FixedNewstyle));

    [Fact]
    public void ClientFlagsAreFourBigEndianBytes()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteClientFlags(buffer, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        AssertWritten(Hex("00000003"), buffer, n);
    }

    [Theory]
    [InlineData("00000000", 0x0u)]
    [InlineData("00000001", 0x1u)]
    [InlineData("00000002", 0x2u)]
    [InlineData("00000003", 0x3u)]
    [InlineData("80000001", 0x80000001u)] // unknown bits survive so the server can reject them
    [InlineData("01000000", 0x01000000u)] // a little-endian reader would see 1 here
    public void ReadClientFlagsIsBigEndianAndKeepsUnknownBits(string wire, uint expected) =>
        Assert.Equal(expected, (uint)HandshakeCodec.ReadClientFlags(Hex(wire)));

    [Fact]
    public void ReadClientFlagsIgnoresBytesAfterTheFirstFour() =>
        Assert.Equal(NbdClientFlags.FixedNewstyle, HandshakeCodec.ReadClientFlags(Hex("00000001 FFFFFFFF")));

    // ---- Option request header ----------------------------------------------------------------------------------

    [Fact]
    public void OptionRequestHeaderIsIHaveOptOptionLength()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteOptionHeader(buffer, (uint)NbdOption.Go, 0x0102);
        AssertWritten(Hex("49484156454F5054 00000007 00000102"), buffer, n);
    }

    [Fact]
    public void ReadOptionHeaderDecodesEachField()
    {
        OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(Hex("49484156454F5054 0000000A 00010203"));
        Assert.Equal(0x49484156454F5054UL, header.Magic);
        Assert.Equal(10u, header.Option);
        Assert.Equal(0x00010203u, header.Length);
        Assert.True(header.HasValidMagic);
    }

    [Fact]
    public void ReadOptionHeaderKeepsUnknownOptionNumbers()
    {
        OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(Hex("49484156454F5054 DEADBEEF 00000000"));
        Assert.Equal(0xDEADBEEFu, header.Option);
        Assert.Equal(0u, header.Length);
    }

    [Theory]
    [InlineData("49484156454F5055")] // last byte off by one
    [InlineData("4E42444D41474943")] // NBDMAGIC instead of IHAVEOPT
    [InlineData("54504F4556414849")] // IHAVEOPT byte-reversed (little-endian)
    [InlineData("0003E889045565A9")] // the option reply magic
    public void ReadOptionHeaderFlagsWrongMagic(string magic)
    {
        OptionRequestHeader header = HandshakeCodec.ReadOptionHeader(Hex(magic + "00000001 00000000"));
        Assert.False(header.HasValidMagic);
    }

    [Fact]
    public void OptionRequestHeaderRoundTrips()
    {
        var buffer = new byte[16];
        HandshakeCodec.WriteOptionHeader(buffer, 0x80000001u, 0xFFFFFFFEu);
        Assert.Equal(new OptionRequestHeader(0x49484156454F5054UL, 0x80000001u, 0xFFFFFFFEu), HandshakeCodec.ReadOptionHeader(buffer));
    }

    // ---- Option reply header and ACK ------------------------------------------------------------------------------

    [Fact]
    public void OptionReplyHeaderIsMagicOptionTypeLength()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteOptionReplyHeader(buffer, (uint)NbdOption.Info, NbdOptionReplyType.Info, 12);
        AssertWritten(Hex(ReplyMagic + "00000006 00000003 0000000C"), buffer, n);
    }

    [Fact]
    public void OptionReplyHeaderWithErrorTypeAndLargeLength()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteOptionReplyHeader(buffer, 0x12345678u, NbdOptionReplyType.ErrTooBig, 0x01020304u);
        AssertWritten(Hex(ReplyMagic + "12345678 80000009 01020304"), buffer, n);
    }

    [Fact]
    public void AckHasTypeOneAndNoData()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteAck(buffer, (uint)NbdOption.List);
        AssertWritten(Hex(ReplyMagic + "00000003 00000001 00000000"), buffer, n);
    }

    [Fact]
    public void ReadOptionReplyHeaderDecodesEachField()
    {
        OptionReplyHeader header = HandshakeCodec.ReadOptionReplyHeader(Hex(ReplyMagic + "00000007 80000006 00000010"));
        Assert.Equal(0x3e889045565a9UL, header.Magic);
        Assert.Equal(7u, header.Option);
        Assert.Equal(NbdOptionReplyType.ErrUnknown, header.Type);
        Assert.Equal(16u, header.Length);
        Assert.True(header.IsError);
    }

    [Theory]
    [InlineData("00000001", false)]
    [InlineData("00000004", false)]
    [InlineData("7FFFFFFF", false)]
    [InlineData("80000000", true)]
    [InlineData("80000001", true)]
    [InlineData("8000000A", true)]
    [InlineData("FFFFFFFF", true)]
    public void OptionReplyIsErrorExactlyWhenBit31IsSet(string type, bool isError) =>
        Assert.Equal(isError, HandshakeCodec.ReadOptionReplyHeader(Hex(ReplyMagic + "00000001" + type + "00000000")).IsError);

    // ---- Error replies ---------------------------------------------------------------------------------------------

    [Fact]
    public void ErrorWithMessage()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteError(buffer, (uint)NbdOption.Go, NbdOptionReplyType.ErrUnknown, "no such export");
        AssertWritten(Concat(Hex(ReplyMagic + "00000007 80000006 0000000E"), Ascii("no such export")), buffer, n);
    }

    [Fact]
    public void ErrorWithEmptyMessageHasZeroLength()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteError(buffer, 0x2Au, NbdOptionReplyType.ErrUnsup, "");
        AssertWritten(Hex(ReplyMagic + "0000002A 80000001 00000000"), buffer, n);
    }

    [Fact]
    public void ErrorMessageLengthCountsUtf8Bytes()
    {
        var buffer = NewBuffer();
        // "café" is 4 characters but 5 UTF-8 bytes (é = C3 A9).
        int n = HandshakeCodec.WriteError(buffer, (uint)NbdOption.StartTls, NbdOptionReplyType.ErrPolicy, "caf\u00e9");
        AssertWritten(Hex(ReplyMagic + "00000005 80000002 00000005 636166C3A9"), buffer, n);
    }

    // ---- NBD_REP_SERVER --------------------------------------------------------------------------------------------

    [Fact]
    public void ServerCarriesNameLengthNameAndDescription()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteServer(buffer, (uint)NbdOption.List, "disk", "My disk");
        AssertWritten(Concat(
            Hex(ReplyMagic + "00000003 00000002 0000000F"), // length = 4 + 4 + 7
            Hex("00000004"),
            Ascii("disk"),
            Ascii("My disk")), buffer, n);
    }

    [Fact]
    public void ServerWithoutDescription()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteServer(buffer, (uint)NbdOption.List, "disk", "");
        AssertWritten(Hex(ReplyMagic + "00000003 00000002 00000008 00000004 6469736B"), buffer, n);
    }

    [Fact]
    public void ServerWithEmptyNameForTheDefaultExport()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteServer(buffer, (uint)NbdOption.List, "", "default");
        AssertWritten(Concat(Hex(ReplyMagic + "00000003 00000002 0000000B 00000000"), Ascii("default")), buffer, n);
    }

    [Fact]
    public void ServerNameLengthCountsUtf8Bytes()
    {
        var buffer = NewBuffer();
        // "dïsk": ï = C3 AF, so the name is 5 bytes; "€" = E2 82 AC.
        int n = HandshakeCodec.WriteServer(buffer, (uint)NbdOption.List, "d\u00efsk", "\u20ac");
        AssertWritten(Hex(ReplyMagic + "00000003 00000002 0000000C 00000005 64C3AF736B E282AC"), buffer, n);
    }

    // ---- NBD_REP_INFO ----------------------------------------------------------------------------------------------

    [Fact]
    public void InfoExportHasLengthTwelve()
    {
        var buffer = NewBuffer();
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.ReadOnly | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.CanMultiConn;
        int n = HandshakeCodec.WriteInfoExport(buffer, (uint)NbdOption.Go, 0x0123456789ABCDEFUL, flags);
        AssertWritten(Hex(ReplyMagic + "00000007 00000003 0000000C" + "0000 0123456789ABCDEF 0107"), buffer, n);
    }

    [Fact]
    public void InfoExportWithEveryAdvertisedFlag()
    {
        var buffer = NewBuffer();
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
            | NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendDf
            | NbdTransmissionFlags.CanMultiConn | NbdTransmissionFlags.SendCache | NbdTransmissionFlags.SendFastZero
            | NbdTransmissionFlags.BlockStatusPayload;
        int n = HandshakeCodec.WriteInfoExport(buffer, (uint)NbdOption.Info, 1UL << 40, flags);
        // bits 0,2,3,5,6,7,8,10,11,12 = 0x1DED; 2^40 bytes = 0x0000010000000000.
        AssertWritten(Hex(ReplyMagic + "00000006 00000003 0000000C" + "0000 0000010000000000 1DED"), buffer, n);
    }

    [Fact]
    public void InfoName()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteInfoText(buffer, (uint)NbdOption.Go, NbdInfoType.Name, "disk");
        AssertWritten(Hex(ReplyMagic + "00000007 00000003 00000006" + "0001 6469736B"), buffer, n);
    }

    [Fact]
    public void InfoDescription()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteInfoText(buffer, (uint)NbdOption.Info, NbdInfoType.Description, "A disk");
        AssertWritten(Concat(Hex(ReplyMagic + "00000006 00000003 00000008 0002"), Ascii("A disk")), buffer, n);
    }

    [Fact]
    public void InfoDescriptionEmptyHasLengthTwo()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteInfoText(buffer, (uint)NbdOption.Info, NbdInfoType.Description, "");
        AssertWritten(Hex(ReplyMagic + "00000006 00000003 00000002 0002"), buffer, n);
    }

    [Fact]
    public void InfoNameLengthCountsUtf8Bytes()
    {
        var buffer = NewBuffer();
        // U+1F600 is a surrogate pair in UTF-16 and 4 bytes in UTF-8.
        int n = HandshakeCodec.WriteInfoText(buffer, (uint)NbdOption.Go, NbdInfoType.Name, "x\U0001F600");
        AssertWritten(Hex(ReplyMagic + "00000007 00000003 00000007 0001 78 F09F9880"), buffer, n);
    }

    [Fact]
    public void InfoBlockSizeHasLengthFourteen()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteInfoBlockSize(buffer, (uint)NbdOption.Go, 1, 4096, 33554432);
        AssertWritten(Hex(ReplyMagic + "00000007 00000003 0000000E" + "0003 00000001 00001000 02000000"), buffer, n);
    }

    [Fact]
    public void InfoBlockSizeFieldOrderIsMinimumPreferredMaximum()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteInfoBlockSize(buffer, (uint)NbdOption.Info, 0x00000200, 0x00010000, 0xFFFFFFFF);
        AssertWritten(Hex(ReplyMagic + "00000006 00000003 0000000E" + "0003 00000200 00010000 FFFFFFFF"), buffer, n);
    }

    // ---- NBD_REP_META_CONTEXT ------------------------------------------------------------------------------------

    [Fact]
    public void MetaContextCarriesIdAndName()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteMetaContext(buffer, (uint)NbdOption.SetMetaContext, 0x01020304, "base:allocation");
        AssertWritten(Hex(ReplyMagic + "0000000A 00000004 00000013" // length = 4 + 15
            + "01020304"
            + "62 61 73 65 3A 61 6C 6C 6F 63 61 74 69 6F 6E"), buffer, n);
    }

    [Fact]
    public void MetaContextForListWithIdZero()
    {
        var buffer = NewBuffer();
        int n = HandshakeCodec.WriteMetaContext(buffer, (uint)NbdOption.ListMetaContext, 0, "base:");
        AssertWritten(Hex(ReplyMagic + "00000009 00000004 00000009 00000000 626173653A"), buffer, n);
    }

    // ---- Reply to NBD_OPT_EXPORT_NAME -------------------------------------------------------------------------------

    [Fact]
    public void ExportNameReplyWithNoZeroesIsTenBytes()
    {
        var buffer = NewBuffer();
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua;
        int n = HandshakeCodec.WriteExportNameReply(buffer, 0x0000000040000000UL, flags, noZeroes: true);
        AssertWritten(Hex("0000000040000000 000D"), buffer, n);
    }

    [Fact]
    public void ExportNameReplyWithoutNoZeroesAppends124ZeroBytes()
    {
        var buffer = NewBuffer();
        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.ReadOnly;
        int n = HandshakeCodec.WriteExportNameReply(buffer, 0x0102030405060708UL, flags, noZeroes: false);
        AssertWritten(Concat(Hex("0102030405060708 0003"), new byte[124]), buffer, n);
        Assert.Equal(134, n);
    }
}
